"""Sweeps on a local Ray (sweep.py) and their report (keras_sac.experiments.report), with tiny budgets.

Everything before Ray starts is tested without it, in the default suite. The tests that start Ray are slow:
the 2 x 2 sweep (run once per module, about a minute on 2 cores) and the worker-kill and driver-kill faults.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from keras_sac.config.settings import ConfigError
from keras_sac.experiments.stats import interval
from keras_sac.experiments.sweep_plan import (
    Plan,
    check_sweep_dir,
    parse_grid,
    parse_seeds,
    split_values,
    trial_status,
    validate,
    write_manifest,
)
from keras_sac.experiments.sweep_trial import scores
from keras_sac.io.run_files import read_metrics

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "keras_sac" / "configs"
TINY = [
    "--total-timesteps",
    "300",
    "--set",
    "learning_starts=100",
    "--set",
    "eval_freq=100",
    "--set",
    "n_eval_episodes=1",
    "--set",
    "log_interval=100",
    "--set",
    "checkpoint_freq=100",
    "--set",
    "batch_size=32",
    "--set",
    "net_arch=[32,32]",
]


def sweep(args, cwd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "sweep.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=900, **kwargs
    )


# --- before Ray: parsing, validation, the sweep folder ----------------------------------------------------


def test_seeds_and_grid_parse():
    assert parse_seeds("0-4") == (0, 1, 2, 3, 4)
    assert parse_seeds("0,3,7") == (0, 3, 7)
    assert parse_seeds("2") == (2,)
    assert split_values("[64,64],[256,256]") == ["[64,64]", "[256,256]"]
    assert parse_grid(["learning_rate=3e-4,1e-3", "net_arch=[64,64],[32]"]) == (
        ("learning_rate", ("3e-4", "1e-3")),
        ("net_arch", ("[64,64]", "[32]")),
    )
    for bad in ("3-1", "a", "0,0", "-1"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)
    for bad, match in (
        (["learning_rate"], "key=value1"),
        (["seed=1,2"], "--seeds"),
        (["gamma=0.9,0.9"], "twice"),
        (["gamma=0.9", "gamma=0.99"], "given twice"),
        (["gamma=0.9,"], "key=value1"),
    ):
        with pytest.raises(ConfigError, match=match):
            parse_grid(bad)


def test_grid_trials_and_their_folders():
    plan = Plan(
        ("Pendulum-v1", "InvertedPendulum-v5"), (0, 1), parse_grid(["learning_rate=3e-4,1e-3", "batch_size=256,512"])
    )
    trials = plan.trials()
    assert len(trials) == 2 * 2 * 2 * 2
    assert len({t.run_dir for t in trials}) == len(trials)
    assert trials[0].run_dir == "Pendulum-v1/learning_rate=3e-4,batch_size=256/seed0"


@pytest.mark.parametrize(
    "grid, message",
    [
        (
            ["lerning_rate=3e-4"],
            "--grid lerning_rate=3e-4: unknown config key 'lerning_rate': did you mean 'learning_rate'",
        ),
        (["learning_rate=3e-4,abc"], "--grid learning_rate=abc: learning_rate must be a number"),
        (["batch_size=256,0"], "--grid batch_size=0: batch_size = 0 is out of range"),
    ],
)
def test_a_bad_grid_value_is_named(grid, message):
    with pytest.raises(ConfigError) as info:
        validate(Plan(("Pendulum-v1",), (0,), parse_grid(grid)), CONFIGS)
    assert message in str(info.value)


def test_a_folder_of_another_sweep_is_refused(tmp_path):
    plan = Plan(("Pendulum-v1",), (0, 1), parse_grid(["learning_rate=3e-4,1e-3"]))
    assert check_sweep_dir(tmp_path / "new", plan) is None
    write_manifest(tmp_path / "s", plan, ["sweep.py", "--seeds", "0-1"])
    assert check_sweep_dir(tmp_path / "s", plan)["command"] == ["sweep.py", "--seeds", "0-1"]
    other = Plan(("Pendulum-v1",), (0, 1), parse_grid(["learning_rate=3e-4,3e-3"]))
    with pytest.raises(
        ConfigError,
        match=r"holds a different sweep \(its grid is .*repeat its own command: "
        r"sweep.py --seeds 0-1",
    ):
        check_sweep_dir(tmp_path / "s", other)
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "x.txt").write_text("x")
    with pytest.raises(ConfigError, match="not a sweep folder"):
        check_sweep_dir(tmp_path / "files", plan)


def test_scores():
    assert scores([10.0, 30.0, 20.0]) == {"final": 20.0, "best": 30.0, "auc": 20.0}


def test_a_config_s_bootstrap_ci_is_its_own_whatever_else_is_in_the_table():
    # rliable 1.2 resamples from numpy's global RNG (it ignores its random_state): a config's CI must be the same on
    # every build, and must not move when another config joins the table or the configs come in another order
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, size=(9, 1)), rng.normal(3, 2, size=(7, 1))
    np.random.seed(123)
    alone = interval({"b": b})["b"]
    assert np.random.random() == np.random.RandomState(123).random()  # the caller's global RNG is left as it was
    assert interval({"b": b})["b"] == alone
    assert interval({"a": a, "b": b})["b"] == alone
    assert interval({"b": b, "a": a}) == {"a": interval({"a": a})["a"], "b": alone}
    assert alone[1] < alone[0] < alone[2]


def test_train_reports_each_evaluation_and_stops_when_told(tmp_path):
    """The hook a sweep reports through: every evaluation with the earlier ones; a returned reason stops the
    run there (checkpoint, policy and summary written, the reason recorded)."""
    from keras_sac.experiments.training import train
    from keras_sac.io.run_files import write_run_start

    config = Plan(
        ("InvertedPendulum-v5",),
        (0,),
        (),
        tuple(
            {
                "learning_starts": "50",
                "eval_freq": "100",
                "n_eval_episodes": "1",
                "log_interval": "50",
                "checkpoint_freq": "0",
                "batch_size": "32",
                "net_arch": "[32,32]",
            }.items()
        ),
        None,
        400,
    ).resolve("InvertedPendulum-v5", {}, 0, CONFIGS)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_run_start(run_dir, config, ["test"])
    seen = []

    def report(step, evaluations):
        seen.append((step, [e[0] for e in evaluations]))
        return "pruned" if step == 200 else None

    summary = train(config, run_dir, progress_bar=False, say=lambda *a: None, on_evaluation=report)
    assert seen == [(100, [100]), (200, [100, 200])]
    assert summary["stopped_by"] == "pruned" and summary["num_timesteps"] == 200
    assert (run_dir / "policy" / "saved_model.pb").is_file() and trial_status(run_dir) == "started"
    assert json.loads((run_dir / "run.json").read_text())["command"] == ["test"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--grid", "lerning_rate=3e-4"], "did you mean 'learning_rate'"),
        (["--grid", "learning_rate=3e-4,-1"], "--grid learning_rate=-1: learning_rate = -1.0 is out of range"),
        (["--address", "127.0.0.1:{port}"], "cannot reach a Ray cluster at 127.0.0.1:{port} (Connection refused)"),
        (["--search", "optuna", "--grid", "learning_rate=1e-4,1e-3"], "--search optuna needs --trials N"),
        (["--trials", "3"], "--trials is for --search optuna"),
        (["--threads-per-trial", "999"], "is more than this machine's"),
    ],
)
def test_bad_input_is_one_line_and_starts_nothing(tmp_path, args, message):
    port = _closed_port()
    args = [a.format(port=port) for a in args]
    done = sweep(["--env", "InvertedPendulum-v5", "--sweep-dir", "s", *args], tmp_path)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()  # exactly one line
    assert line.startswith("sweep.py: error: ") and message.format(port=port) in line, line
    assert not (tmp_path / "s").exists()


# --- a 2 x 2 sweep on a local Ray ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("sweep")
    args = [
        "--env",
        "InvertedPendulum-v5",
        "--seeds",
        "0-1",
        "--grid",
        "learning_rate=3e-4,1e-3",
        *TINY,
        "--sweep-dir",
        "s",
    ]
    done = sweep(args, cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    return cwd / "s", args, done


@pytest.mark.slow
def test_each_trial_is_an_ordinary_run_folder(finished_sweep):
    root, _, done = finished_sweep
    manifest = json.loads((root / "sweep.json").read_text())
    assert manifest["definition"]["grid"] == {"learning_rate": ["3e-4", "1e-3"]}
    assert len(manifest["trials"]) == 4
    assert "4 trials, 0 finished before, 4 to run" in done.stdout
    for trial in manifest["trials"]:
        folder = root / trial["run_dir"]
        assert trial_status(folder) == "finished"
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["num_timesteps"] == 300 and summary["stopped_by"] is None
        config = (folder / "config.yaml").read_text()
        assert f"seed: {trial['seed']}" in config
        assert f"learning_rate: {float(trial['values']['learning_rate'])}" in config
        for name in ("metrics.csv", "policy/saved_model.pb", "learning_curve.png", "checkpoints"):
            assert (folder / name).exists(), name
    # evaluate.py takes a trial folder as it takes any run folder
    folder = root / manifest["trials"][0]["run_dir"]
    evaluated = subprocess.run(
        [sys.executable, str(REPO / "evaluate.py"), str(folder), "--episodes", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert "return" in evaluated.stdout


@pytest.mark.slow
def test_the_report_numbers_are_those_of_the_run_folders(finished_sweep):
    root, _, _ = finished_sweep
    report = json.loads((root / "report.json").read_text())
    configs = report["summary"]["InvertedPendulum-v5"]["configs"]
    assert set(configs) == {"learning_rate=3e-4", "learning_rate=1e-3"}
    for label, stats in configs.items():
        finals, bests = [], []
        for seed in (0, 1):  # straight from each run's metrics.csv, not through the report's code
            rows = (root / "InvertedPendulum-v5" / label / f"seed{seed}" / "metrics.csv").read_text().splitlines()
            header = rows[0].split(",")
            column = header.index("eval/mean_return")
            returns = [float(r.split(",")[column]) for r in rows[1:] if r.split(",")[column]]
            finals.append(returns[-1])
            bests.append(max(returns))
        for which, values in (("final", finals), ("best", bests)):
            s = stats[which]
            assert s["mean"] == pytest.approx(np.mean(values))
            assert s["std"] == pytest.approx(np.std(values))
            assert s["iqm"] == pytest.approx(scipy.stats.trim_mean(values, 0.25))
            assert min(values) - 1e-9 <= s["ci"][0] <= s["iqm"] <= s["ci"][1] <= max(values) + 1e-9
    pair = report["summary"]["InvertedPendulum-v5"]["improvement"][0]
    x = [t["final"] for t in report["trials"] if t["label"] == pair["x"]]
    y = [t["final"] for t in report["trials"] if t["label"] == pair["y"]]
    direct = np.mean([(a > b) + 0.5 * (a == b) for a in x for b in y])
    assert pair["p"] == pytest.approx(direct)
    md = (root / "report.md").read_text()
    assert "IQM [95% CI]" in md and "`learning_rate=1e-3`" in md and "![iqm](iqm.png)" in md
    assert (root / "iqm.png").stat().st_size > 10_000
    assert (root / "compare_InvertedPendulum-v5.png").stat().st_size > 10_000


@pytest.mark.slow
def test_a_finished_sweep_run_again_does_nothing(finished_sweep):
    root, args, _ = finished_sweep
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    again = sweep(args, root.parent)
    assert again.returncode == 0, again.stderr
    assert "all 4 trials are finished; nothing to run" in again.stdout
    assert "Ray:" not in again.stdout  # Ray did not even start
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == before


# --- faults (slow) ---------------------------------------------------------------------------------------


def _wait_for_checkpoint(folder: Path, proc, timeout: float = 600) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        record = folder / "sweep_trial.json"
        if record.is_file() and any((folder / "checkpoints").glob("step_*")):
            return json.loads(record.read_text())
        time.sleep(0.5)
    raise AssertionError(f"no checkpoint in {folder} after {timeout} s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


FAULT = [
    "--total-timesteps",
    "3000",
    "--set",
    "learning_starts=100",
    "--set",
    "eval_freq=500",
    "--set",
    "n_eval_episodes=1",
    "--set",
    "checkpoint_freq=500",
    "--set",
    "batch_size=32",
    "--set",
    "net_arch=[32,32]",
]


@pytest.mark.slow
def test_a_killed_worker_resumes_its_trial_from_its_checkpoint(tmp_path):
    args = ["--env", "InvertedPendulum-v5", "--seeds", "0", *FAULT, "--sweep-dir", "s"]
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "sweep.py"), *args],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    folder = tmp_path / "s" / "InvertedPendulum-v5" / "default" / "seed0"
    record = _wait_for_checkpoint(folder, proc)
    os.kill(record["attempts"][0]["pid"], signal.SIGKILL)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, out + err
    assert "its worker failed; it resumes from its checkpoint" in out
    attempts = json.loads((folder / "sweep_trial.json").read_text())["attempts"]
    assert len(attempts) == 2 and attempts[1]["from"] == "started" and attempts[1]["ended"] == "finished"
    resumes = json.loads((folder / "run.json").read_text())["resumes"]
    assert len(resumes) == 1 and resumes[0]["from_step"] >= 500  # from its checkpoint, not from step 0
    assert resumes[0]["command"][-len(args) :] == args and "commit" in resumes[0]  # the sweep's, not Ray's worker's
    assert json.loads((folder / "summary.json").read_text())["num_timesteps"] == 3000
    steps = [int(line.split(",")[0]) for line in (folder / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == sorted(set(steps)) and steps[-1] == 3000  # no row repeated or lost across the kill


def test_a_session_that_ends_with_trials_unfinished_says_so_and_how_to_resume():
    from keras_sac.experiments.sweep import ended_line

    assert ended_line(15, 15, 0, 600.0) == ("15 trials ran in 10.0 min (0 failed)", 0)
    assert ended_line(15, 14, 1, 600.0) == ("15 trials ran in 10.0 min (1 failed)", 1)
    line, code = ended_line(15, 2, 0, 498.0)  # Ctrl-C: Tune stops the trials and returns
    assert code == 130 and line.startswith("stopped after 8.3 min: 13 of 15 trials unfinished (2 ended, 0 failed)")
    assert "the same command resumes them" in line
    assert ended_line(15, 2, 1, 60.0)[1] == 1


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["SIGKILL", "SIGINT"])
def test_a_killed_driver_loses_no_finished_trial_and_a_rerun_completes(tmp_path, stop):
    args = ["--env", "InvertedPendulum-v5", "--seeds", "0-1", *FAULT, "--max-concurrent", "1", "--sweep-dir", "s"]
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "sweep.py"), *args],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first, second = (tmp_path / "s" / "InvertedPendulum-v5" / "default" / f"seed{s}" for s in (0, 1))
    deadline = time.time() + 900
    while trial_status(first) != "finished" or not any((second / "checkpoints").glob("step_*")):
        assert time.time() < deadline and proc.poll() is None, "the sweep did not reach its second trial"
        time.sleep(0.5)
    finished_summary = (first / "summary.json").read_text()
    worker = json.loads((second / "sweep_trial.json").read_text())["attempts"][0]["pid"]
    # SIGKILL to the driver alone: the embedded Ray and its workers share its fate; SIGINT (Ctrl-C): Tune stops
    # the trials, and the driver says what is left
    proc.send_signal(getattr(signal, stop))
    out, _ = proc.communicate(timeout=300)
    if stop == "SIGINT":
        assert proc.returncode == 130 and "1 of 2 trials unfinished (1 ended, 0 failed)" in out, out
    deadline = time.time() + 60
    while _alive(worker):
        assert time.time() < deadline, "the trial's worker outlived its driver"
        time.sleep(0.5)
    again = sweep(args, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 trials, 1 finished before, 1 to run" in again.stdout
    assert (first / "summary.json").read_text() == finished_summary  # not recomputed
    assert json.loads((second / "run.json").read_text())["resumes"][0]["from_step"] >= 500
    assert trial_status(second) == "finished"


@pytest.mark.slow
def test_an_optuna_search_samples_prunes_survives_its_driver_and_reports(tmp_path):
    args = [
        "--env",
        "InvertedPendulum-v5",
        "--search",
        "optuna",
        "--trials",
        "4",
        "--metric",
        "auc",
        "--grid",
        "learning_rate=1e-4,3e-3",
        "--grid",
        "tau=0.005,0.01,0.02",
        *TINY[2:],
        "--total-timesteps",
        "900",
        "--max-concurrent",
        "1",  # one trial at a time: which trials ASHA stops is then fixed by the searcher's seed
        "--sweep-dir",
        "s",
    ]
    first = subprocess.Popen(
        [sys.executable, str(REPO / "sweep.py"), *args],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 600
    while not list((tmp_path / "s").glob("InvertedPendulum-v5/trial-*/checkpoints/step_*")):
        assert time.time() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.5)
    first.kill()  # the driver, mid-search: the same command restores the search (Tune's state in tune/optuna)
    first.communicate()
    time.sleep(5)  # its workers go with it
    done = sweep(args, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "restoring the search" in done.stdout
    folders = sorted((tmp_path / "s" / "InvertedPendulum-v5").glob("trial-*"))
    assert len(folders) == 4
    attempts = [json.loads((f / "sweep_trial.json").read_text())["attempts"] for f in folders]
    assert any(a[-1]["from"] == "started" for a in attempts)  # resumed from its checkpoint
    for folder in folders:
        info = json.loads((folder / "sweep_trial.json").read_text())
        assert 1e-4 <= float(info["values"]["learning_rate"]) <= 3e-3
        assert info["values"]["tau"] in ("0.005", "0.01", "0.02")
        status = trial_status(folder)
        assert status in ("finished", "pruned")
        if status == "finished":  # a run that reached its total is complete, whatever the scheduler said
            assert (folder / "policy" / "saved_model.pb").is_file() and not (folder / "pruned.json").exists()
            assert json.loads((folder / "summary.json").read_text())["num_timesteps"] == 900
        else:  # stopped by ASHA at a rung (its grace period is a ninth of the budget: 100 steps), not resumed
            pruned_at = json.loads((folder / "pruned.json").read_text())["step"]
            logged = [int(r["step"]) for r in read_metrics(folder / "metrics.csv")]
            assert 100 <= pruned_at < 900 and max(logged) < 900
    statuses = [trial_status(f) for f in folders]
    # trials arrive one by one: each later one below the best so far at a rung is stopped there
    assert statuses.count("pruned") >= 1 and statuses.count("finished") >= 1, statuses
    report = (tmp_path / "s" / "report.md").read_text()
    assert "Searched with Optuna and ASHA for the highest `auc`" in report
    again = sweep(args, tmp_path)
    assert again.returncode == 0 and "nothing to run" in again.stdout, again.stdout + again.stderr
