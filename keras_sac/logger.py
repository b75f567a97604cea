"""Run metrics: one CSV, TensorBoard event files, and a learning-curve plot; no maths in here."""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import tensorflow as tf

TRAIN_KEYS = ("train/critic_loss", "train/actor_loss", "train/alpha_loss", "train/alpha", "train/entropy",
              "train/mean_q")
COLUMNS = ("step", "time/elapsed_s", "time/steps_per_second", "rollout/episode_return", "rollout/episode_length",
           *TRAIN_KEYS, "eval/mean_return", "eval/std_return")


class RunLogger:
    """Appends rows to `metrics.csv` and writes the same scalars to TensorBoard under `tb/`.

    `resume_at=N` continues a run from its checkpoint at step N: rows after N (logged after that
    checkpoint, so about to be logged again) are dropped, and the TensorBoard files are rebuilt from the
    remaining rows, so neither has duplicated or missing steps.
    """

    def __init__(self, run_dir: Path, resume_at: int | None = None):
        self.csv_path = run_dir / "metrics.csv"
        tb_dir = run_dir / "tb"
        kept = []
        if resume_at is not None and self.csv_path.exists():
            kept = [row for row in read_metrics(self.csv_path) if row["step"] <= resume_at]
            shutil.rmtree(tb_dir, ignore_errors=True)
            self.csv_path.unlink()
        new = not self.csv_path.exists()
        self._file = open(self.csv_path, "a", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=COLUMNS, extrasaction="ignore")
        if new:
            self._csv.writeheader()
        self._tb = tf.summary.create_file_writer(str(tb_dir))
        for row in kept:
            self.log(int(row["step"]), {k: v for k, v in row.items() if k != "step"})
        self.rows = kept  # the rows of earlier sessions of this run, for the caller's bookkeeping

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
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


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
