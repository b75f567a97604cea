"""Run metrics: one CSV, TensorBoard event files, and a learning-curve plot; no maths in here."""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import socket
import time
from pathlib import Path

import tensorflow as tf

from keras_sac.files import fsync_tree, replace_dir, staging_dir, write_atomic

TRAIN_KEYS = ("train/critic_loss", "train/actor_loss", "train/alpha_loss", "train/alpha", "train/entropy",
              "train/mean_q", "train/n_updates", "train/learning_rate")
COLUMNS = ("step", "time/elapsed_s", "time/steps_per_second", "time/episodes", "rollout/episode_return",
           "rollout/episode_length", *TRAIN_KEYS, "eval/mean_return", "eval/std_return", "eval/mean_ep_length",
           "eval/success_rate")


class RunLogger:
    """Appends rows to `metrics.csv` and writes the same scalars to TensorBoard under `tb/`.

    `resume_at=N` continues a run from its checkpoint at step N: rows and TensorBoard points after N
    (logged after that checkpoint, so about to be logged again) are dropped, so neither has duplicated or
    missing steps. Both are trimmed by writing the kept part beside the original and renaming it over, so
    a kill during a resume loses nothing; TensorBoard keeps each kept point's original wall time.
    """

    def __init__(self, run_dir: Path, resume_at: int | None = None):
        self.csv_path = run_dir / "metrics.csv"
        tb_dir = run_dir / "tb"
        self.rows: list[dict[str, float]] = []  # rows of earlier sessions of this run, for the caller
        if resume_at is not None:
            if self.csv_path.exists():
                self.rows = _trim_csv(self.csv_path, resume_at)
            if tb_dir.is_dir():
                _trim_tensorboard(tb_dir, resume_at)
        new = not self.csv_path.exists()
        self._file = open(self.csv_path, "a", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=COLUMNS, extrasaction="ignore")
        if new:
            self._csv.writeheader()
        self._tb = tf.summary.create_file_writer(str(tb_dir))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self._csv.writerow({"step": step, **{k: _fmt(v) for k, v in metrics.items()}})
        self._file.flush()
        with self._tb.as_default(step=step):
            for key, value in metrics.items():
                tf.summary.scalar(key, value)
        self._tb.flush()

    def close(self) -> None:
        self._file.close()
        self._tb.close()


def _fmt(value: float) -> str:
    return f"{value:.6g}" if math.isfinite(value) else str(value)


def read_metrics(csv_path: Path) -> list[dict[str, float]]:
    """Rows of a metrics.csv as dicts of floats (empty cells left out)."""
    with open(csv_path, newline="") as f:
        return [_as_floats(row) for row in csv.DictReader(f)]


def _as_floats(row: dict[str, str]) -> dict[str, float]:
    return {k: float(v) for k, v in row.items() if v not in ("", None)}


def _trim_csv(csv_path: Path, last_step: int) -> list[dict[str, float]]:
    """Keep the rows up to `last_step` (as written, under today's columns); return them as floats."""
    with open(csv_path, newline="") as f:
        kept = [row for row in csv.DictReader(f) if _step(row) is not None and _step(row) <= last_step]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(kept)
    write_atomic(csv_path, text.getvalue())  # the full file stays in place until the trimmed one is complete
    return [_as_floats({k: v for k, v in row.items() if k in COLUMNS}) for row in kept]


def _step(row: dict) -> int | None:
    try:
        return int(float(row["step"]))
    except (KeyError, TypeError, ValueError):  # a row torn by a kill mid-write
        return None


def _trim_tensorboard(tb_dir: Path, last_step: int) -> None:
    """Replace `tb_dir` by one events file holding its events up to `last_step`, each with its original
    wall time (event files are TFRecords of Event protos, so this is a filtered copy)."""
    from tensorboard.compat.proto import event_pb2

    header, kept = None, []  # the first file's version event, then (wall time, record) of every kept point
    for events_file in sorted(tb_dir.glob("events.out.tfevents*")):
        try:
            for record in tf.data.TFRecordDataset(str(events_file)):
                raw = record.numpy()
                event = event_pb2.Event.FromString(raw)
                if event.HasField("file_version"):
                    header = header or raw
                elif event.step <= last_step:
                    kept.append((event.wall_time, raw))
        except tf.errors.DataLossError:  # the last record was torn by a kill: the records before it count
            pass
    tmp = staging_dir(tb_dir)
    try:
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.resumed"
        with tf.io.TFRecordWriter(str(tmp / name)) as writer:
            for raw in ([header] if header else []) + [raw for _, raw in sorted(kept, key=lambda item: item[0])]:
                writer.write(raw)
        fsync_tree(tmp)
        replace_dir(tmp, tb_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def plot_learning_curve(csv_path: Path, out_path: Path, title: str) -> None:
    """Episode return (training rollouts and deterministic evaluations) against env steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(csv_path)
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label, style in (("rollout/episode_return", "training episodes (mean of last 100)", "-"),
                              ("eval/mean_return", "deterministic evaluation", "o-")):
        points = [(r["step"], r[key]) for r in rows if key in r]
        if points:
            ax.plot(*zip(*points), style, label=label, markersize=3)
    ax.set_xlabel("env steps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
