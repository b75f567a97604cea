"""Run metrics across a resume: nothing lost to a kill, no step twice, TensorBoard keeps its wall times."""

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from keras_sac.io.logger import RunLogger, read_metrics

ROOT = Path(__file__).resolve().parents[1]


def log_steps(run_dir, steps, resume_at=None):
    logger = RunLogger(run_dir, resume_at=resume_at)
    for step in steps:
        logger.log(step, {"train/critic_loss": step / 100, "rollout/episode_return": float(step)})
    logger.close()


def tensorboard_points(tb_dir, tag="train/critic_loss"):
    """(step, wall time, value) of every point of `tag` in the folder's event files, in step order."""
    import tensorflow as tf

    points = []
    for events in sorted(tb_dir.glob("events.out.tfevents*")):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            points += [
                (event.step, event.wall_time, float(tf.make_ndarray(value.tensor)))
                for value in event.summary.value
                if value.tag == tag
            ]
    return sorted(points)


def test_a_kill_while_resume_trims_the_csv_loses_no_row(tmp_path):
    log_steps(tmp_path, [100, 200, 300, 400, 500])
    before = (tmp_path / "metrics.csv").read_text()
    # The child dies (os._exit, as under SIGKILL) at the first CSV row it writes while trimming.
    script = textwrap.dedent("""
        import csv, os, sys
        from pathlib import Path
        sys.path.insert(0, sys.argv[1])
        from keras_sac.io.logger import RunLogger
        def die(*args, **kwargs):
            os._exit(9)
        csv.DictWriter.writerow = die
        csv.DictWriter.writerows = die
        RunLogger(Path(sys.argv[2]), resume_at=300)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script, str(ROOT), str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 9, proc.stderr[-2000:]
    assert (tmp_path / "metrics.csv").read_text() == before  # every earlier session's row is still there
    log_steps(tmp_path, [400], resume_at=300)  # and the next resume trims it properly
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.csv")] == [100, 200, 300, 400]


def test_resume_keeps_tensorboard_points_with_their_original_wall_times(tmp_path):
    log_steps(tmp_path, [100, 200, 300, 400, 500])
    original = tensorboard_points(tmp_path / "tb")
    assert [p[0] for p in original] == [100, 200, 300, 400, 500]
    time.sleep(1.1)
    log_steps(tmp_path, [400, 500, 600], resume_at=300)
    resumed = tensorboard_points(tmp_path / "tb")
    assert [p[0] for p in resumed] == [100, 200, 300, 400, 500, 600]  # each step once
    assert resumed[:3] == original[:3]  # the kept points, wall time included
    assert resumed[3][1] > original[4][1] + 1.0  # the re-logged ones are new
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.csv")] == [100, 200, 300, 400, 500, 600]


def test_a_torn_last_tensorboard_record_does_not_stop_a_resume(tmp_path):
    log_steps(tmp_path, [100, 200, 300])
    events = next((tmp_path / "tb").glob("events.out.tfevents*"))
    events.write_bytes(events.read_bytes()[:-7])  # a kill in the middle of the last record
    log_steps(tmp_path, [300], resume_at=200)
    assert [p[0] for p in tensorboard_points(tmp_path / "tb")] == [100, 200, 300]


def test_a_resume_trims_episodes_csv_to_its_checkpoint_like_metrics_csv(tmp_path):
    logger = RunLogger(tmp_path)
    for step in (40, 90, 150, 260):
        logger.log_episode(step, step / 10, 50)
    logger.log(200, {"rollout/episode_return": 1.0})  # flushes the episodes so far
    logger.close()  # and closing the rest
    assert [e["step"] for e in read_metrics(tmp_path / "episodes.csv")] == [40, 90, 150, 260]
    logger = RunLogger(tmp_path, resume_at=150)  # the episodes after the checkpoint end again
    logger.log_episode(210, 7.5, 60)
    logger.close()
    episodes = read_metrics(tmp_path / "episodes.csv")
    assert episodes == [
        {"step": 40, "return": 4.0, "length": 50},
        {"step": 90, "return": 9.0, "length": 50},
        {"step": 150, "return": 15.0, "length": 50},
        {"step": 210, "return": 7.5, "length": 60},
    ]


def test_update_metrics_average_phases_and_fold_past_their_cap_into_the_same_mean():
    import numpy as np
    import pytest

    from keras_sac.core.metrics import UpdateMetrics

    rng = np.random.default_rng(0)
    # float32, as the update's tensors are: their mean is taken in float64 (float32 sums differ at ~1e-8)
    phases = [
        {
            "train/critic_loss": np.float32(rng.normal()),
            "train/mean_q_per_critic": rng.normal(size=2).astype(np.float32),
        }
        for _ in range(11)
    ]
    folded, whole = UpdateMetrics(cap=4), UpdateMetrics(cap=100)
    idle = UpdateMetrics()  # inactive (no logger asked): adding keeps nothing
    idle.add({"train/critic_loss": 1.0})
    assert len(idle) == 0 and idle.mean() == {}
    folded.active = whole.active = True
    for i, phase in enumerate(phases):
        folded.add(phase)
        whole.add(phase)
        assert len(folded._phases) < 4, f"phase {i}: the list reached its cap unfolded"
        if i == 0:  # one phase is its own mean
            assert whole.mean()["train/critic_loss"] == float(phase["train/critic_loss"])
    assert len(folded) == len(whole) == 11
    expected = np.mean([np.float64(p["train/critic_loss"]) for p in phases])
    q = np.mean([p["train/mean_q_per_critic"].astype(np.float64) for p in phases], axis=0)
    for metrics in (folded.mean(), whole.mean()):
        assert metrics["train/critic_loss"] == pytest.approx(expected, rel=1e-12)
        assert [metrics["train/mean_q_1"], metrics["train/mean_q_2"]] == pytest.approx(q.tolist(), rel=1e-12)
    restored = UpdateMetrics()  # a checkpoint's copy goes on averaging as the original does
    restored.active = True
    restored.restore(whole.state())
    restored.add(phases[0])
    whole.add(phases[0])
    assert restored.mean() == pytest.approx(whole.mean(), rel=1e-12) and len(restored) == 12
    whole.clear()
    assert whole.mean() == {} and len(whole) == 0
