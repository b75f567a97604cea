"""train.py and evaluate.py as a user runs them: subprocesses, a tiny budget, real files. Where a fresh
interpreter is not what a test checks (settings reaching the agent, refusals), train.py's or evaluate.py's main
runs in this process (conftest.cli_in_process): the same code from the command line on, without a TensorFlow
start-up per test (~10 s under load)."""

import csv
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_in_process

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--set",
    "learning_starts=100",
    "--set",
    "eval_freq=150",
    "--set",
    "n_eval_episodes=1",
    "--set",
    "log_interval=100",
    "--set",
    "net_arch=[32,32]",
    "--set",
    "batch_size=32",
    "--no-progress",
]


def run(script, *args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, str(ROOT / script), *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    error_lines = [
        line for line in proc.stderr.splitlines() if line.startswith(("train.py: error:", "evaluate.py: error:"))
    ]
    assert len(error_lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in error_lines[0], error_lines[0]


def assert_refused_in_process(args, message, capsys, monkeypatch):
    """train.py's main called in this process refuses `args` in one line naming `message`. Settings are refused
    before any TensorFlow work, so this checks what a fresh `train.py` would print without its start-up."""
    assert_one_line_error(cli_in_process("train.py", args, capsys, monkeypatch), message)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    proc = run("train.py", "--env", "Pendulum-v1", "--total-timesteps", 300, "--seed", 5, "--run-dir", run_dir, *TINY)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "eval @ 150 steps" in proc.stdout and "last evaluation (step 300): return" in proc.stdout
    return run_dir


def test_train_leaves_a_complete_run_folder(run_dir):
    names = {p.name for p in run_dir.iterdir()}
    assert {
        "config.yaml",
        "run.json",
        "metrics.csv",
        "episodes.csv",
        "tb",
        "checkpoints",
        "policy",
        "learning_curve.png",
        "diagnostics.png",
        "summary.json",
    } <= names
    config = (run_dir / "config.yaml").read_text()
    assert "learning_rate: 0.001" in config  # from configs/Pendulum-v1.yaml
    assert "seed: 5" in config and "batch_size: 32" in config and "total_timesteps: 300" in config
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [100, 150, 200, 300]
    assert rows[-1]["eval/mean_return"]
    # the diagnostics plot's inputs: each critic's mean Q (they differ, being separate networks) and the target
    assert rows[-1]["train/mean_q_1"] != rows[-1]["train/mean_q_2"] and float(rows[-1]["train/target_entropy"]) == -1.0
    # alpha is learned (Pendulum's entropy starts above its target, so it falls from init_alpha 1.0) and each
    # row logs its mean over the row's updates: between the row before's and the checkpointed final value
    from keras_sac import KerasSAC

    alphas = [float(r["train/alpha"]) for r in rows if r["train/alpha"]]  # (rows after training started)
    saved_alpha = KerasSAC.load(run_dir).alpha
    assert 0.5 < saved_alpha < alphas[-1] < alphas[-2] < 0.99
    assert any(p.name.startswith("events.out.tfevents") for p in (run_dir / "tb").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["num_timesteps"] == 300 and [e["step"] for e in summary["evaluations"]] == [150, 300]
    assert (run_dir / "policy" / "saved_model.pb").is_file()
    assert (run_dir / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert (run_dir / "diagnostics.png").read_bytes()[:4] == b"\x89PNG"
    # the best evaluation's policy is kept beside the last step's, with the evaluation behind it
    best = json.loads((run_dir / "best_policy.json").read_text())
    assert summary["best_policy"] == best and best["step"] == summary["best_eval_step"] in (150, 300)
    assert best["mean_return"] == summary["best_eval_mean_return"]
    assert _policy_step(run_dir / "best_policy") == best["step"]


def _policy_step(policy_dir):
    """The env step an exported policy was taken at (its keras_sac.json)."""
    return json.loads((policy_dir / "assets.extra" / "keras_sac.json").read_text())["num_timesteps"]


def test_the_best_a_resumed_run_must_beat_is_the_kept_policy_s_else_the_log_s(tmp_path):
    from keras_sac.experiments.training import best_so_far

    logged = [(150, -900.0, 1.0), (300, -700.0, 1.0), (450, -800.0, 1.0)]
    assert best_so_far(tmp_path, []) == float("-inf")
    assert best_so_far(tmp_path, logged) == -700.0  # a run from before best policies were kept
    (tmp_path / "best_policy.json").write_text(json.dumps({"step": 600, "mean_return": -650.0, "std_return": 1.0}))
    assert best_so_far(tmp_path, logged) == -700.0  # a record without its policy folder names nothing
    (tmp_path / "best_policy").mkdir()
    assert best_so_far(tmp_path, logged) == -650.0  # kept at a step a resume rewound: still the run's best


def test_a_resumed_run_keeps_the_best_policy_of_every_session(run_dir, tmp_path, capsys, monkeypatch):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    record = run / "best_policy.json"
    kept = json.loads(record.read_text())
    # a best from an earlier session that no later evaluation beats stays, policy and record
    record.write_text(json.dumps({**kept, "mean_return": 1e9}))
    proc = cli_in_process("train.py", ["--resume", run, "--total-timesteps", 600], capsys, monkeypatch)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _policy_step(run / "best_policy") == kept["step"] and json.loads(record.read_text())["mean_return"] == 1e9
    assert f"best policy (return 1000000000.0 at step {kept['step']}): {run / 'best_policy'}" in proc.stdout
    # one that the next evaluation beats is replaced at that evaluation (750, the first after 600)
    record.write_text(json.dumps({**kept, "mean_return": -1e9}))
    proc = cli_in_process("train.py", ["--resume", run, "--total-timesteps", 900], capsys, monkeypatch)
    assert proc.returncode == 0, proc.stderr[-2000:]
    best = json.loads(record.read_text())
    assert best["step"] >= 750 and _policy_step(run / "best_policy") == best["step"]
    assert json.loads((run / "summary.json").read_text())["best_policy"] == best
    # keep_best_policy: false keeps none
    fresh = tmp_path / "fresh"
    args = ["--env", "Pendulum-v1", "--total-timesteps", 300, "--run-dir", fresh, *TINY]
    proc = cli_in_process("train.py", [*args, "--set", "keep_best_policy=false"], capsys, monkeypatch)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (
        not (fresh / "best_policy").exists() and json.loads((fresh / "summary.json").read_text())["best_policy"] is None
    )
    assert "best policy" not in proc.stdout
    # a new run written over an old run's folder (--force) inherits nothing of it: not its best (1e9), not its
    # checkpoints (at 900, which would outrank the new run's), not its metrics rows; a file of the user's stays
    record.write_text(json.dumps({**best, "mean_return": 1e9}))
    (run / "notes.txt").write_text("mine")
    args = ["--env", "Pendulum-v1", "--total-timesteps", 300, "--run-dir", run, "--force", *TINY]
    proc = cli_in_process("train.py", args, capsys, monkeypatch)
    assert proc.returncode == 0, proc.stderr[-2000:]
    best = json.loads(record.read_text())
    assert best["step"] in (150, 300) and _policy_step(run / "best_policy") == best["step"]
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_000000000300"]
    assert [int(r["step"]) for r in csv.DictReader(open(run / "metrics.csv"))] == [100, 150, 200, 300]
    assert (run / "notes.txt").read_text() == "mine"
    from keras_sac import KerasSAC

    assert KerasSAC.load(run).num_timesteps == 300


def test_a_best_policy_that_cannot_be_written_is_a_warning_and_training_goes_on(tmp_path, capsys, monkeypatch):
    from keras_sac import KerasSAC

    export = KerasSAC.export

    def full_disk(self, path, *args, **kwargs):
        if Path(path).name == "best_policy":
            raise OSError(28, "No space left on device")
        return export(self, path, *args, **kwargs)

    monkeypatch.setattr(KerasSAC, "export", full_disk)
    run = tmp_path / "run"
    args = ["--env", "Pendulum-v1", "--total-timesteps", 300, "--run-dir", run, *TINY]
    proc = cli_in_process("train.py", args, capsys, monkeypatch)
    assert proc.returncode == 0, proc.stderr[-2000:]
    warnings = [line for line in proc.stdout.splitlines() if "best policy so far" in line]
    # one line per new best (150 is the first; 300 too if it beats it)
    assert 1 <= len(warnings) <= 2 and "(step 150) was not kept: [Errno 28] No space left on device" in warnings[0]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["num_timesteps"] == 300 and summary["best_policy"] is None  # trained to the end regardless
    assert (run / "policy" / "saved_model.pb").is_file() and not (run / "best_policy.json").exists()


def test_checkpoint_of_a_run_loads_and_acts(run_dir):
    from keras_sac import KerasSAC

    agent = KerasSAC.load(run_dir)  # a run folder: its newest checkpoint
    assert agent.num_timesteps == 300 and agent.config.seed == 5 and agent.spec.env_id == "Pendulum-v1"
    action, _ = agent.predict(np.array([1.0, 0.0, 0.0]), deterministic=True)
    assert action.shape == (1,) and -2.0 <= action[0] <= 2.0


def test_evaluate_a_run_folder_and_a_policy_folder(run_dir, capsys, monkeypatch):
    proc = run("evaluate.py", run_dir, "--episodes", 2, "--seed", 1)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("evaluating") and "Pendulum-v1" in lines[0]
    assert re.fullmatch(r"episode 0: return -?\d+\.\d, length 200", lines[1]), lines[1]
    assert re.fullmatch(r"episode 1: return -?\d+\.\d, length 200", lines[2]), lines[2]
    assert lines[3].startswith("mean return ") and "mean length 200.0 over 2 episodes" in lines[3]
    assert "cuda" not in proc.stderr.lower()  # TensorFlow's start-up lines are kept off the terminal
    again = cli_in_process("evaluate.py", [run_dir / "policy", "--episodes", 2, "--seed", 1], capsys, monkeypatch)
    assert again.stdout.splitlines()[1:] == lines[1:]  # same policy, same seed, same returns


def test_evaluate_refuses_an_env_that_does_not_fit_the_policy(run_dir):
    assert_one_line_error(
        run("evaluate.py", run_dir, "--env", "InvertedPendulum-v5", "--episodes", 1), "does not match the policy"
    )


def test_ctrl_c_keeps_the_progress(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "--env",
            "Pendulum-v1",
            "--total-timesteps",
            "100000",
            "--run-dir",
            str(run_dir),
            *TINY,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )

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


def test_run_json_records_versions_and_machine(run_dir):
    record = json.loads((run_dir / "run.json").read_text())
    for package in (
        "keras_sac",
        "python",
        "tensorflow",
        "keras",
        "tensorflow-probability",
        "gymnasium",
        "mujoco",
        "numpy",
    ):
        assert record["versions"][package], package
    assert record["machine"]["cpu"] and record["machine"]["cores"] >= 1
    assert record["env_id"] == "Pendulum-v1" and record["env_kwargs"] == {} and record["resumes"] == []


@pytest.mark.parametrize(
    "flags, isa",
    [("fpu avx avx2 fma", "AVX2"), ("fpu avx avx2 avx512f avx512_bf16", "AVX-512"), ("fpu sse2", None)],
)
def test_the_machine_record_tells_cpu_kinds_of_one_name_apart(tmp_path, flags, isa):
    from keras_sac.io.run_files import machine

    block = f"processor\t: 0\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: {flags}\n"
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(block + "\nprocessor\t: 1\nmodel\t\t: 99\nflags\t\t: avx512f\n")  # the first CPU's
    record = machine(str(cpuinfo))
    assert (record["cpu"], record["cpu_id"], record.get("isa")) == ("AMD EPYC", "family 25 model 1", isa)
    assert set(machine(str(tmp_path / "none"))) == {"cpu", "cores", "system"}  # no /proc/cpuinfo: the basics


def test_resuming_a_finished_run_says_how_to_extend_it(run_dir):
    before = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    proc = run("train.py", "--resume", run_dir, "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"{run_dir} is finished (300 of 300 steps)" in proc.stdout
    assert f"--resume {run_dir} --total-timesteps 600" in proc.stdout
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == before  # nothing was run


def test_an_unversioned_id_with_env_kwargs_trains_the_latest_version_and_prints_hints_that_work(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # a shell where `python` is not this interpreter
    monkeypatch.chdir(tmp_path)
    proc = cli_in_process(
        "train.py",
        [
            "--env",
            "Pendulum",
            "--env-kwargs",
            "{g: 5.0}",
            "--total-timesteps",
            "150",
            "--seed",
            "1",
            *TINY,
        ],
        capsys,
        monkeypatch,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "train.py: note: env 'Pendulum' is Pendulum-v1 (its latest version)" in proc.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("Pendulum-v1-")
    assert "learning_rate: 0.001" in (run_dir / "config.yaml").read_text()  # configs/Pendulum-v1.yaml applied
    assert json.loads((run_dir / "run.json").read_text())["env_kwargs"] == {"g": 5.0}
    metadata = json.loads((run_dir / "policy" / "assets.extra" / "keras_sac.json").read_text())
    assert metadata["env_id"] == "Pendulum-v1" and metadata["env_kwargs"] == {"g": 5.0}
    from keras_sac import KerasSAC

    assert KerasSAC.load(run_dir).env.unwrapped.g == 5.0  # the checkpoint re-makes the same env
    last = proc.stdout.strip().splitlines()
    # the closing lines name the policy and how to evaluate it, the plots just written, and TensorBoard
    assert (
        last[-2] == f"plots: {Path('runs') / run_dir.name / 'learning_curve.png'}  "
        f"{Path('runs') / run_dir.name / 'diagnostics.png'}"
    )
    assert last[-1] == "TensorBoard: tensorboard --logdir runs"
    hint = last[-3].split("evaluate with: ")[1]
    assert hint.split()[0] != "python"  # `python` would not be this virtualenv's in that shell
    again = subprocess.run(f"{hint} --episodes 1", shell=True, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "mean length 200.0 over 1 episodes" in again.stdout, again.stderr[-2000:]


def test_evaluate_refuses_a_path_without_a_policy_before_tensorflow_starts(tmp_path):
    block_tf = (
        "import sys; sys.modules['tensorflow'] = None; sys.path.insert(0, sys.argv[1]); "
        "import evaluate; sys.exit(evaluate.main(sys.argv[2:]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", block_tf, str(ROOT), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.startswith("evaluate.py: error: no SavedModel policy at")


def test_importing_keras_sac_prints_no_tensorflow_start_up_lines(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "from keras_sac import KerasSAC; print('ok')"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok"
    assert proc.stderr == "", proc.stderr


def test_mujoco_compile_warnings_show_once_per_process(tmp_path):
    script = (
        "import warnings; warnings.simplefilter('default'); from keras_sac.envs.make import make_env\n"
        "for _ in range(3): make_env('HalfCheetah-v5')"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.count("settotalmass") == 1, proc.stderr
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


def test_cli_warnings_are_one_plain_line(monkeypatch):
    import warnings

    from keras_sac.cli.common import setup_warnings

    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # restored after the test
    setup_warnings("train.py")

    line = warnings.formatwarning("\x1b[33mWARN: the obs returned\n  is odd\x1b[0m", UserWarning, "x.py", 3)
    assert line == "train.py: warning: the obs returned is odd\n"


def test_a_preset_and_variant_settings_from_the_command_line_reach_the_agent(tmp_path, capsys, monkeypatch):
    preset = ROOT / "configs" / "presets" / "HalfCheetah-v5-crossq.yaml"
    monkeypatch.chdir(tmp_path)
    proc = cli_in_process(
        "train.py",
        [
            "--env",
            "Pendulum-v1",
            "--config",
            preset,
            "--total-timesteps",
            200,
            "--seed",
            1,
            "--run-dir",
            tmp_path / "run",
            *TINY,
            "--set",
            "critic_arch=[32,32]",
            "--set",
            "actor_arch=[32,32]",
            "--set",
            "n_steps=3",
            "--set",
            "actor_learning_rate={schedule: linear, end: 1.0e-5, steps: 1000}",
            "--set",
            "compile_mode=graph",  # auto would compile the batch-renorm update with XLA, the slow part of a tiny run
        ],
        capsys,
        monkeypatch,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    from keras_sac import KerasSAC

    agent = KerasSAC.load(tmp_path / "run")
    c = agent.config
    assert (c.target_update, c.critic_batch_renorm, c.policy_delay, c.adam_beta1, c.n_steps) == (
        "none",
        True,
        3,
        0.5,
        3,
    )
    assert c.actor_learning_rate == {"schedule": "linear", "end": 1e-5, "steps": 1000} and agent.target_critics is None
    assert_refused_in_process(
        ["--env", "Pendulum-v1", "--set", "target_backup=redq", "--set", "n_critics=1", "--run-dir", tmp_path / "bad"],
        "redq_subset (2) must be between 1 and n_critics (1)",
        capsys,
        monkeypatch,
    )
    assert not (tmp_path / "bad").exists()


def test_tqc_simba_adamw_resets_and_gradient_clipping_from_the_command_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    proc = cli_in_process(
        "train.py",
        [
            "--env",
            "Pendulum-v1",
            "--total-timesteps",
            200,
            "--run-dir",
            tmp_path / "run",
            *TINY,
            "--set",
            "critic_type=quantile",
            "--set",
            "n_quantiles=5",
            "--set",
            "architecture=simba",
            "--set",
            "normalize_observations=true",
            "--set",
            "net_arch=[32,32]",
            "--set",
            "weight_decay=0.01",
            "--set",
            "reset_interval=60",  # one reset in the run's ~100 updates (each redraws the networks)
            "--set",
            "max_grad_norm=10",
            "--set",
            "compile_mode=graph",  # auto would compile TQC with XLA: 17 s for 100 updates; test_variants runs auto
        ],
        capsys,
        monkeypatch,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    import csv

    from keras_sac import KerasSAC

    with open(tmp_path / "run" / "metrics.csv", newline="") as f:
        last = list(csv.DictReader(f))[-1]  # the norms before clipping, logged beside the losses
    assert float(last["train/critic_grad_norm"]) > 0 and float(last["train/actor_grad_norm"]) > 0

    agent = KerasSAC.load(tmp_path / "run")
    assert agent.critics.members[0].__class__.__name__ == "SimbaQNetwork"
    assert agent.critics(np.zeros((1, 3), np.float32), np.zeros((1, 1), np.float32)).shape == (2, 1, 5)
    assert agent.critic_optimizer.__class__.__name__ == "AdamW" and agent.config.reset_interval == 60
    for settings, message in [
        (
            ["critic_type=quantile", "n_quantiles=2", "top_quantiles_to_drop_per_net=2"],
            "top_quantiles_to_drop_per_net (2) must be smaller than n_quantiles (2)",
        ),
        (["critic_type=quantile", "target_backup=redq", "n_critics=5"], "target_backup: redq combines scalar critics"),
        (["reset_interval=0"], "reset_interval = 0 is out of range"),
        (["weight_decay=-1"], "weight_decay = -1.0 is out of range: expected a number >= 0"),
        (["max_grad_norm=0"], "max_grad_norm = 0.0 is out of range: expected a number > 0"),
    ]:
        sets = [a for kv in settings for a in ("--set", kv)]
        assert_refused_in_process(
            ["--env", "Pendulum-v1", *sets, "--run-dir", tmp_path / "bad"], message, capsys, monkeypatch
        )
        assert not (tmp_path / "bad").exists()


def test_vector_envs_from_the_command_line_log_and_checkpoint_on_schedule(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    proc = cli_in_process(
        "train.py",
        [
            "--env",
            "Pendulum-v1",
            "--total-timesteps",
            300,
            "--seed",
            0,
            "--run-dir",
            tmp_path / "run",
            *TINY,
            "--set",
            "n_envs=4",
            "--set",
            "log_interval=50",
            "--set",
            "checkpoint_freq=100",
            "--set",
            "vectorization=async",
        ],
        capsys,
        monkeypatch,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    from keras_sac.io.logger import read_metrics

    rows = read_metrics(tmp_path / "run" / "metrics.csv")
    # 4 env steps per vector step: each row at the first step reaching a multiple of log_interval (50)
    assert [int(r["step"]) for r in rows] == [52, 100, 152, 200, 252, 300]
    assert [int(r["step"]) for r in rows if "eval/mean_return" in r] == [152, 300]  # eval_freq 150 and the end
    from keras_sac import KerasSAC

    with pytest.warns(UserWarning, match="new episodes in all 4 envs"):
        agent = KerasSAC.load(tmp_path / "run")
    assert (agent.config.n_envs, agent.config.vectorization, agent.num_timesteps, len(agent.buffer)) == (
        4,
        "async",
        300,
        300,
    )
    agent.close()
