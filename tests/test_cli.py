"""train.py and evaluate.py as a user runs them: subprocesses, a tiny budget, real files."""

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "learning_starts=100", "--set", "eval_freq=150", "--set", "n_eval_episodes=1",
        "--set", "log_interval=100", "--set", "net_arch=[32,32]", "--set", "batch_size=32", "--no-progress"]


def run(script, *args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith(("train.py: error:",
                                                                                  "evaluate.py: error:"))]
    assert len(error_lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in error_lines[0], error_lines[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    proc = run("train.py", "--env", "Pendulum-v1", "--total-timesteps", 300, "--seed", 5, "--run-dir", run_dir, *TINY)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "eval @ 150 steps" in proc.stdout and "last evaluation (step 300): return" in proc.stdout
    return run_dir


def test_train_leaves_a_complete_run_folder(run_dir):
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.yaml", "run.json", "metrics.csv", "tb", "checkpoints", "policy", "learning_curve.png",
            "summary.json"} <= names
    config = (run_dir / "config.yaml").read_text()
    assert "learning_rate: 0.001" in config  # from configs/Pendulum-v1.yaml
    assert "seed: 5" in config and "batch_size: 32" in config and "total_timesteps: 300" in config
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [100, 150, 200, 300]
    assert rows[-1]["eval/mean_return"] and float(rows[-1]["train/alpha"]) > 0
    assert any(p.name.startswith("events.out.tfevents") for p in (run_dir / "tb").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["num_timesteps"] == 300 and [e["step"] for e in summary["evaluations"]] == [150, 300]
    assert (run_dir / "policy" / "saved_model.pb").is_file()
    assert (run_dir / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_checkpoint_of_a_run_loads_and_acts(run_dir):
    from keras_sac import KerasSAC

    agent = KerasSAC.load(run_dir)  # a run folder: its newest checkpoint
    assert agent.num_timesteps == 300 and agent.config.seed == 5 and agent.spec.env_id == "Pendulum-v1"
    action, _ = agent.predict(np.array([1.0, 0.0, 0.0]), deterministic=True)
    assert action.shape == (1,) and -2.0 <= action[0] <= 2.0


def test_evaluate_a_run_folder_and_a_policy_folder(run_dir):
    proc = run("evaluate.py", run_dir, "--episodes", 2, "--seed", 1)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("evaluating") and "Pendulum-v1" in lines[0]
    assert lines[1].startswith("episode 0: return ") and lines[2].startswith("episode 1: return ")
    assert lines[3].startswith("mean return ") and "over 2 episodes" in lines[3]
    assert "cuda" not in proc.stderr.lower()  # TensorFlow's start-up lines are kept off the terminal
    again = run("evaluate.py", run_dir / "policy", "--episodes", 2, "--seed", 1)
    assert again.stdout.splitlines()[1:] == lines[1:]  # same policy, same seed, same returns


def test_evaluate_refuses_an_env_that_does_not_fit_the_policy(run_dir):
    assert_one_line_error(run("evaluate.py", run_dir, "--env", "InvertedPendulum-v5", "--episodes", 1),
                          "does not match the policy")


def test_ctrl_c_keeps_the_progress(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), "--env", "Pendulum-v1", "--total-timesteps",
                             "100000", "--run-dir", str(run_dir), *TINY],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)

    def rows_logged():
        metrics = run_dir / "metrics.csv"
        return len(metrics.read_text().splitlines()) - 1 if metrics.is_file() else 0

    deadline = time.monotonic() + 120
    while rows_logged() < 2 and time.monotonic() < deadline:  # two rows: past warm-up, gradient steps running
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "SIGINT at step" in out and "--resume" in out and "Traceback" not in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped_by"] == "SIGINT" and 150 <= summary["num_timesteps"] < 100_000
    from keras_sac import KerasSAC

    assert KerasSAC.load(run_dir).num_timesteps == summary["num_timesteps"]
    assert (run_dir / "policy" / "saved_model.pb").is_file()
