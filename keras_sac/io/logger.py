"""Run metrics: one CSV and TensorBoard event files (with the run's HParams); no maths in here."""

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

from keras_sac.io.files import fsync_tree, replace_dir, staging_dir, write_atomic
from keras_sac.io.run_files import (
    EPISODE_COLUMNS,
    EPISODES_FILE,
    METRICS_FILE,
    _as_floats,
    read_metrics,  # noqa: F401  (re-exported)
)

TRAIN_KEYS = (
    "train/critic_loss",
    "train/actor_loss",
    "train/alpha_loss",
    "train/alpha",
    "train/entropy",
    "train/target_entropy",
    "train/mean_q",
    "train/n_updates",
    "train/learning_rate",
)
COLUMNS = (
    "step",
    "time/elapsed_s",
    "time/steps_per_second",
    "time/episodes",
    "rollout/episode_return",
    "rollout/episode_length",
    *TRAIN_KEYS,
    "eval/mean_return",
    "eval/std_return",
    "eval/mean_ep_length",
    "eval/success_rate",
)


def columns(config) -> tuple[str, ...]:
    """metrics.csv's columns for an agent's SACConfig: each critic's mean Q (train/mean_q_1, ...) and, with
    max_grad_norm set, the critics' and the actor's gradient norms before clipping."""
    norms = ("train/critic_grad_norm", "train/actor_grad_norm") if config.max_grad_norm is not None else ()
    return (*COLUMNS, *(f"train/mean_q_{i + 1}" for i in range(config.n_critics)), *norms)


class RunLogger:
    """Appends rows to `metrics.csv` and writes the same scalars to TensorBoard under `tb/`; each training
    episode's (end step, return, length) goes to `episodes.csv` (flushed with each metrics row).

    `resume_at=N` continues a run from its checkpoint at step N: rows and TensorBoard points after N
    (logged after that checkpoint, so about to be logged again) are dropped, so neither has duplicated or
    missing steps. Both are trimmed by writing the kept part beside the original and renaming it over, so
    a kill during a resume loses nothing; TensorBoard keeps each kept point's original wall time.
    """

    def __init__(
        self,
        run_dir: Path,
        resume_at: int | None = None,
        columns: tuple[str, ...] = COLUMNS,
        hparams: dict | None = None,
    ):
        self.csv_path, episodes_path = run_dir / METRICS_FILE, run_dir / EPISODES_FILE
        self.columns = columns
        tb_dir = run_dir / "tb"
        self.rows: list[dict[str, float]] = []  # rows of earlier sessions of this run, for the caller
        if resume_at is not None:
            if self.csv_path.exists():
                self.rows = _trim_csv(self.csv_path, resume_at, columns)
            if episodes_path.exists():
                _trim_csv(episodes_path, resume_at, EPISODE_COLUMNS)
            if tb_dir.is_dir():
                _trim_tensorboard(tb_dir, resume_at)
        new = not self.csv_path.exists()
        self._file = open(self.csv_path, "a", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=columns, extrasaction="ignore")
        if new:
            self._csv.writeheader()
        new = not episodes_path.exists()
        self._episodes_file = open(episodes_path, "a", newline="")
        self._episodes = csv.writer(self._episodes_file)
        if new:
            self._episodes.writerow(EPISODE_COLUMNS)
        self._tb = tf.summary.create_file_writer(str(tb_dir))
        if hparams is not None and resume_at is None:  # TensorBoard's HParams view: the run's config
            from tensorboard.plugins.hparams import api as hp

            with self._tb.as_default():
                hp.hparams(_hparam_values(hparams))
            self._tb.flush()

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self._csv.writerow({"step": step, **{k: _fmt(v) for k, v in metrics.items()}})
        self._file.flush()
        self._episodes_file.flush()
        with self._tb.as_default(step=step):
            for key, value in metrics.items():
                tf.summary.scalar(key, value)
        self._tb.flush()

    def log_episode(self, step: int, episode_return: float, length: int) -> None:
        """A training episode that ended at env step `step` (buffered: written out with the next row)."""
        self._episodes.writerow((step, _fmt(episode_return), length))

    def close(self) -> None:
        self._file.close()
        self._episodes_file.close()
        self._tb.close()


def _fmt(value: float) -> str:
    return f"{value:.6g}" if math.isfinite(value) else str(value)


def _hparam_values(config: dict) -> dict:
    """Config values as HParams takes them (bool, int, float, str); sequences, mappings and None as text."""
    return {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in config.items()}


def _trim_csv(csv_path: Path, last_step: int, columns: tuple[str, ...] = COLUMNS) -> list[dict[str, float]]:
    """Keep the rows up to `last_step` (as written, under today's columns); return them as floats."""
    with open(csv_path, newline="") as f:
        kept = [row for row in csv.DictReader(f) if (step := _step(row)) is not None and step <= last_step]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(kept)
    write_atomic(csv_path, text.getvalue())  # the full file stays in place until the trimmed one is complete
    return [_as_floats({k: v for k, v in row.items() if k in columns}) for row in kept]


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
