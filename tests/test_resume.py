"""Kill train.py (SIGTERM, SIGKILL at random moments) and resume: nothing corrupt, nothing repeated or lost
beyond one checkpoint interval, and with --deterministic the same final weights as an uninterrupted run."""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_checkpoint import assert_same_agent

from keras_sac import KerasSAC
from keras_sac.io.checkpoint import RollingCheckpoints
from keras_sac.io.logger import read_metrics

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT_FREQ, LOG_INTERVAL, LEARNING_STARTS = 100, 50, 100
SETTINGS = [
    "--set",
    f"learning_starts={LEARNING_STARTS}",
    "--set",
    f"checkpoint_freq={CHECKPOINT_FREQ}",
    "--set",
    f"log_interval={LOG_INTERVAL}",
    "--set",
    "eval_freq=300",
    "--set",
    "n_eval_episodes=1",
    "--set",
    "net_arch=[32,32]",
    "--set",
    "batch_size=32",
    "--set",
    "buffer_size=5000",
    "--no-progress",
]


def start(*args):
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def new_run(run_dir, total, *extra):
    return start(
        "--env", "InvertedPendulum-v5", "--seed", 3, "--total-timesteps", total, "--run-dir", run_dir, *SETTINGS, *extra
    )


def finish(proc, expected_rc=0):
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == expected_rc, out[-2000:] + err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    return out


def wait_for_checkpoint(run_dir, min_step, proc):
    checkpoints = RollingCheckpoints(run_dir / "checkpoints")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        folders = checkpoints.folders()
        if folders and int(folders[0].name.split("_")[1]) >= min_step:
            return
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def assert_run_is_complete_and_consistent(run_dir, total):
    steps = [int(r["step"]) for r in read_metrics(run_dir / "metrics.csv")]
    expected = sorted(set(range(LOG_INTERVAL, total + 1, LOG_INTERVAL)) | set(range(300, total + 1, 300)) | {total})
    assert steps == expected  # every logged step exactly once: nothing repeated, nothing missing
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["num_timesteps"] == total and summary["stopped_by"] is None
    agent = KerasSAC.load(run_dir)
    assert agent.num_timesteps == total and len(agent.buffer) == total
    updates = total - LEARNING_STARTS  # one gradient step per step after warm-up
    assert int(agent.n_updates.numpy()) == updates
    # the actor at every policy_delay-th update, counted from the first: also across the resume
    assert int(agent.actor_optimizer.iterations.numpy()) == -(-updates // agent.config.policy_delay)
    return agent, summary


@pytest.mark.slow
def test_sigterm_checkpoints_and_resume_finishes_the_run(tmp_path):
    run_dir = tmp_path / "run"
    proc = new_run(run_dir, 800)
    wait_for_checkpoint(run_dir, 200, proc)
    proc.send_signal(signal.SIGTERM)
    out = finish(proc, expected_rc=143)
    stopped_at = int(re.search(r"SIGTERM at step (\d+)", out).group(1))
    assert RollingCheckpoints(run_dir / "checkpoints").folders()[0].name == f"step_{stopped_at:012d}"
    out = finish(start("--resume", run_dir, "--no-progress"))
    assert f"resuming {run_dir} from step {stopped_at}" in out
    assert_run_is_complete_and_consistent(run_dir, 800)
    (resumed,) = json.loads((run_dir / "run.json").read_text())["resumes"]  # the resume is on record
    assert resumed["from_step"] == stopped_at and resumed["total_timesteps"] == 800 and resumed["at"]
    tb_steps = tensorboard_steps(run_dir / "tb", "train/critic_loss")
    assert tb_steps == sorted(set(tb_steps))  # TensorBoard was rebuilt, not appended to


def tensorboard_steps(tb_dir, tag):
    import tensorflow as tf

    steps = []
    for events in sorted(tb_dir.glob("events.out.tfevents*")):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            steps += [event.step for value in event.summary.value if value.tag == tag]
    return sorted(steps)


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra",
    # with a policy delay, the resumed run's first phase may start mid-period: its program (SACUpdate.plan)
    # comes from the restored update count
    [(), ("--set", "policy_delay=3")],
    ids=["defaults", "policy delay 3"],
)
def test_deterministic_kill_and_resume_equals_the_uninterrupted_run(tmp_path, extra):
    total = 700
    uninterrupted = tmp_path / "whole"
    finish(new_run(uninterrupted, total, "--deterministic", *extra))
    killed = tmp_path / "killed"
    proc = new_run(killed, total, "--deterministic", *extra)
    wait_for_checkpoint(killed, 300, proc)
    proc.kill()
    proc.communicate()
    finish(start("--resume", killed, "--no-progress"))
    whole, summary_whole = assert_run_is_complete_and_consistent(uninterrupted, total)
    resumed, summary_resumed = assert_run_is_complete_and_consistent(killed, total)
    assert_same_agent(whole, resumed)  # every weight, Adam slot, RNG state and buffer row, bit for bit
    assert summary_whole["evaluations"] == summary_resumed["evaluations"]
    # the logged rows too: each train/ value the mean over the same updates (the checkpoint holds the
    # updates since the row before it), and every training episode once, at its step
    train = [
        {k: v for k, v in r.items() if k.startswith("train/")} for r in read_metrics(uninterrupted / "metrics.csv")
    ]
    assert train == [
        {k: v for k, v in r.items() if k.startswith("train/")} for r in read_metrics(killed / "metrics.csv")
    ]
    assert (uninterrupted / "episodes.csv").read_text() == (killed / "episodes.csv").read_text()


def kill_and_resume_until_done(run_dir, total, kills, seed):
    rng = random.Random(seed)
    proc = new_run(run_dir, total, "--deterministic")
    last_row = 0
    for kill in range(1, kills + 1):
        if rng.random() < 0.3:  # during start-up (imports, agent construction, checkpoint loading)
            phase, delay = "start-up", rng.uniform(0.3, 4.0)
        else:  # once this process has made progress: training, evaluation or a checkpoint write
            deadline = time.monotonic() + 120
            while logged_step(run_dir) <= last_row and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            phase, delay = "training", rng.uniform(0.0, 2.0)
        time.sleep(delay)
        if proc.poll() is not None:
            break
        proc.kill()
        proc.communicate()
        checkpoints = RollingCheckpoints(run_dir / "checkpoints")
        rows = read_metrics(run_dir / "metrics.csv") if (run_dir / "metrics.csv").exists() else []
        last_row = int(rows[-1]["step"]) if rows else 0
        debris = [p.name for p in checkpoints.root.glob(".*")] if checkpoints.root.is_dir() else []
        if checkpoints.folders():
            saved = KerasSAC.load(checkpoints.latest()).num_timesteps  # never corrupt: the newest folder verifies
            assert saved % CHECKPOINT_FREQ == 0
            assert last_row - saved <= CHECKPOINT_FREQ  # at most one checkpoint interval is lost
        else:
            saved = None
            assert last_row <= CHECKPOINT_FREQ
        print(
            f"kill {kill} ({phase}, +{delay:.1f} s): last logged step {last_row}, newest good checkpoint "
            f"{saved}, unfinished writes {debris or 'none'}"
        )
        proc = start("--resume", run_dir, "--no-progress")
    finish(proc)
    return assert_run_is_complete_and_consistent(run_dir, total)


def logged_step(run_dir):
    try:
        return int(read_metrics(run_dir / "metrics.csv")[-1]["step"])
    except (OSError, IndexError, KeyError, ValueError):  # not written yet, or being rewritten by a resume
        return 0


@pytest.mark.slow
def test_three_random_sigkills_resume_to_a_consistent_run(tmp_path):
    kill_and_resume_until_done(tmp_path / "run", 1200, kills=3, seed=0)


@pytest.mark.slow
def test_ten_random_sigkills_resume_to_the_same_result_as_no_kill(tmp_path):
    total = 2500
    finish(new_run(tmp_path / "whole", total, "--deterministic"))
    whole, summary_whole = assert_run_is_complete_and_consistent(tmp_path / "whole", total)
    resumed, summary_resumed = kill_and_resume_until_done(tmp_path / "run", total, kills=10, seed=1)
    assert_same_agent(whole, resumed)
    assert summary_whole["evaluations"] == summary_resumed["evaluations"]


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_checkpoint_write(tmp_path):
    run_dir = tmp_path / "run"
    # A bigger buffer makes each write take longer, so the kill can land inside one.
    proc = new_run(run_dir, 1500, "--set", "buffer_size=100000")
    root = run_dir / "checkpoints"
    wait_for_checkpoint(run_dir, 200, proc)
    deadline, caught = time.monotonic() + 120, None
    while caught is None and time.monotonic() < deadline and proc.poll() is None:
        caught = next((entry.name for entry in os.scandir(root) if entry.name.endswith(".tmp")), None)
    proc.kill()
    proc.communicate()
    assert caught is not None, "never saw a checkpoint being written"
    latest = RollingCheckpoints(root).latest()  # the half-written one is ignored, the previous one is good
    assert latest.name < caught.lstrip(".").removesuffix(".tmp")
    finish(start("--resume", run_dir, "--no-progress"))
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # the debris is cleaned by the next write
    assert_run_is_complete_and_consistent(run_dir, 1500)


@pytest.mark.slow
def test_resume_skips_a_damaged_newest_checkpoint_with_a_one_line_warning(tmp_path):
    run_dir = tmp_path / "run"
    proc = new_run(run_dir, 600)
    wait_for_checkpoint(run_dir, 300, proc)
    proc.kill()
    proc.communicate()
    newest, previous = RollingCheckpoints(run_dir / "checkpoints").folders()[:2]
    (newest / "arrays.npz").write_bytes(b"torn write")
    proc = start("--resume", run_dir, "--no-progress")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    warning = [line for line in err.splitlines() if line.startswith("train.py: warning:")]
    assert len(warning) == 1 and newest.name in warning[0] and "using the previous checkpoint" in warning[0]
    assert f"from step {int(previous.name.split('_')[1])}" in out
    assert_run_is_complete_and_consistent(run_dir, 600)
