"""Pictures of train.py run folders: learning curves, training diagnostics, and seeds x variants compared.

    python -m keras_sac.experiments.plot runs/HalfCheetah-v5-20261123-120000            # (or keras-sac-plot ...)
    python -m keras_sac.experiments.plot runs/hc-sac-s* runs/hc-redq-s* --out plots/

One run folder gives `learning_curve.png` (each training episode's return at the step it ended, with the mean
of the episodes that ended in the last 1/20 of the run's steps, and the deterministic evaluations) and
`diagnostics.png` (critic and actor loss, alpha, the mean Q of each critic, the policy's entropy against its
target, the alpha loss: each logged point the mean over the updates of one log interval, with a moving average
once there are enough points). Several give, per env,
`compare_<env>.png`: evaluation return as the mean across the seeds of each config with a band of one
standard deviation (min-max for two seeds), the configs labelled by what differs between them.
train.py draws the single-run figures at the end of every run. Reads only files: no TensorFlow.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import yaml

from keras_sac.config.settings import RunConfig, SACConfig
from keras_sac.io.policy_files import POLICY_SUBDIR, PolicyError, read_metadata
from keras_sac.io.run_files import CONFIG_FILE, EPISODES_FILE, METRICS_FILE, PLOT_FILE, RUN_FILE, read_metrics

DIAGNOSTICS_FILE = "diagnostics.png"
NOT_CONFIG = {
    "seed",
    "total_timesteps",
    "eval_freq",
    "n_eval_episodes",
    "log_interval",
    "checkpoint_freq",
    "video_freq",
    "deterministic",
}  # settings that do not make runs a different variant


class PlotError(ValueError):
    """A folder that cannot be plotted; the message names it and what is missing."""


class Run:
    """A run folder's metrics, env id and config."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        metrics = self.folder / METRICS_FILE
        if not self.folder.is_dir():
            what = "is not a folder" if self.folder.exists() else "does not exist"
            raise PlotError(f"'{folder}' {what}: pass train.py run folders")
        if not metrics.is_file():
            raise PlotError(
                f"'{folder}' has no {METRICS_FILE}: not a train.py run folder, or it has not logged a "
                f"row yet (rows come every log_interval steps)"
            )
        self.rows = [r for r in read_metrics(metrics) if "step" in r]
        episodes = self.folder / EPISODES_FILE  # (runs before keras_sac wrote it: the logged mean of 100)
        self.episodes = [r for r in read_metrics(episodes) if "return" in r] if episodes.is_file() else None
        if not self.rows:
            raise PlotError(f"'{metrics}' holds no rows yet: plot it after its first log_interval steps")
        try:
            self.env_id = json.loads((self.folder / RUN_FILE).read_text())["env_id"]
        except (OSError, ValueError, KeyError):
            self.env_id = self.folder.name
        try:
            text = (self.folder / CONFIG_FILE).read_text()
            self.config = yaml.safe_load(text) or {}
        except (OSError, yaml.YAMLError):
            text, self.config = "", {}
        # `--config FILE`s named in the header ("sources: defaults, .../<env>.yaml, presets/x.yaml, --set, flags")
        sources = text.partition("sources:")[2].splitlines()[0].split(", ") if "sources:" in text else []
        self.presets = [
            Path(src).stem for src in sources if src.endswith((".yaml", ".yml")) and Path(src).stem != self.env_id
        ]

    def target_entropy(self) -> float | None:
        """The config's target_entropy, or -dim(A) from the exported policy's metadata (SAC's default)."""
        if self.config.get("target_entropy") is not None:
            return float(self.config["target_entropy"])
        try:
            return -float(np.prod(read_metadata(self.folder / POLICY_SUBDIR)["action_shape"]))
        except (PolicyError, KeyError):
            return None

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of the rows that have `key`."""
        points = [(r["step"], r[key]) for r in self.rows if key in r and np.isfinite(r[key])]
        if not points:
            return np.zeros(0), np.zeros(0)
        steps, values = zip(*points)
        return np.asarray(steps), np.asarray(values)


def window_average(steps: np.ndarray, values: np.ndarray, span: int) -> np.ndarray:
    """At each point, the mean of the values whose step is in (step - span, step]: a moving average over
    episodes whose window is a stretch of env steps, so a run of long episodes is not averaged with the
    short ones long before it (an episode-count window lags by as many episodes)."""
    sums = np.cumsum(np.insert(values.astype(np.float64), 0, 0.0))
    hi = np.arange(1, len(values) + 1)
    lo = np.searchsorted(steps, steps - span, side="right")
    return (sums[hi] - sums[lo]) / (hi - lo)


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to `window` points (shorter at the start), same length as `values`."""
    return window_average(np.arange(len(values)), values, window)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def _smooth_window(n: int, smooth: int | None) -> int:
    return smooth if smooth else max(1, n // 20)


MIN_SMOOTHED_POINTS = 40  # fewer logged points than this are drawn as they are: a moving average would hide them


def plot_learning_curve(run: Run, out: Path, smooth: int | None = None) -> Path:
    """(a) Each training episode's return at the step it ended, with the mean of the episodes in a window of
    env steps (`window_average`), and the deterministic evaluations (mean +- std over their episodes)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if run.episodes:
        steps = np.asarray([e["step"] for e in run.episodes])
        returns = np.asarray([e["return"] for e in run.episodes])
        interval = run.config.get("log_interval")
        total = int(run.config.get("total_timesteps") or steps[-1])  # the run's length, as planned
        span = smooth * interval if smooth and interval else max(total // 20, 1)
        ax.plot(
            steps, returns, ".", color="tab:blue", alpha=0.5, ms=4, zorder=3, label="training episode (at its end step)"
        )
        ax.plot(
            steps,
            window_average(steps, returns, span),
            color="tab:blue",
            lw=2,
            label=f"training, mean of the episodes that ended in the last {span:,} steps",
        )
    else:
        steps, returns = run.series("rollout/episode_return")
        if len(steps):
            ax.plot(steps, returns, color="tab:blue", lw=2, label="training, mean of the last 100 episodes (logged)")
    steps, means = run.series("eval/mean_return")
    if len(steps):
        _, stds = run.series("eval/std_return")
        stds = stds if len(stds) == len(means) else np.zeros_like(means)
        ax.errorbar(
            steps,
            means,
            yerr=stds,
            fmt="o-",
            color="tab:orange",
            ms=4,
            capsize=2,
            lw=1.5,
            label="deterministic evaluation (mean +- std over episodes)",
        )
    _axes(ax, "episode return", f"SAC on {run.env_id}")
    ax.legend(loc="best", fontsize=8)
    return _save(fig, out / PLOT_FILE)


def plot_diagnostics(run: Run, out: Path, smooth: int | None = None) -> Path:
    """(b) The update's diagnostics as logged (each row the mean over the updates since the row before), with
    a moving average (thick) once a run has MIN_SMOOTHED_POINTS rows."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5))
    critics = sorted((k for k in run.rows[-1] if k.startswith("train/mean_q_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    panels = [
        ("critic loss (sum over critics of 0.5 MSE)", [("train/critic_loss", "critic loss")], True),
        ("actor loss  E[alpha log pi - Q]", [("train/actor_loss", "actor loss")], False),
        ("temperature alpha", [("train/alpha", "alpha")], True),
        (
            "mean Q(s, a) of replayed pairs",
            [(k, f"critic {k.rsplit('_', 1)[1]}") for k in critics] or [("train/mean_q", "mean over critics")],
            False,
        ),
        (
            "policy entropy  -E[log pi(a|s)]",
            [("train/entropy", "entropy"), ("train/target_entropy", "target entropy")],
            False,
        ),
        ("alpha loss", [("train/alpha_loss", "alpha loss")], False),
    ]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (title, keys, log) in zip(axes.flat, panels):
        drawn = False
        for i, (key, label) in enumerate(keys):
            steps, values = run.series(key)
            if not len(steps):
                continue
            drawn, color = True, colors[i % len(colors)]
            if key == "train/target_entropy":
                ax.plot(steps, values, "--", color="black", lw=1.2, label=label)
                continue
            window = _smooth_window(len(values), smooth) if smooth or len(values) >= MIN_SMOOTHED_POINTS else 1
            if window == 1:
                ax.plot(steps, values, color=color, lw=1.5, label=label)
                continue
            ax.plot(steps, values, color=color, alpha=0.3, lw=0.8)
            ax.plot(steps, moving_average(values, window), color=color, lw=1.8, label=label)
        if title.startswith("policy entropy") and drawn and not len(run.series("train/target_entropy")[0]):
            target = run.target_entropy()  # runs logged before the column existed
            if target is not None:
                ax.axhline(target, ls="--", color="black", lw=1.2, label="target entropy")
                ax.legend(fontsize=7, loc="best")
        if log and drawn and all((run.series(k)[1] > 0).all() for k, _ in keys):
            ax.set_yscale("log")
        _axes(ax, "", title)
        if drawn and len(keys) > 1:
            ax.legend(fontsize=7, loc="best")
        if not drawn:
            ax.text(0.5, 0.5, "not logged in this run", ha="center", va="center", transform=ax.transAxes, color="gray")
    interval = run.config.get("log_interval")
    every = f"the mean over the updates of each {interval} steps" if interval else "the mean over each log interval"
    rows = len(run.rows)
    smoothed = smooth or rows >= MIN_SMOOTHED_POINTS
    how = f"thin: {every}; thick: moving average of {_smooth_window(rows, smooth)} rows" if smoothed else every
    fig.suptitle(f"SAC training diagnostics, {run.env_id} ({how})", fontsize=11)
    return _save(fig, out / DIAGNOSTICS_FILE)


def variant_labels(runs: list[Run], most: int = 3) -> list[str]:
    """A label per run: its `--config` preset file (if the runs' presets differ), then up to `most` config
    values that differ among runs of the same preset (seeds and run settings aside; a key an older run's
    config lacks counts as its default)."""
    defaults = {f.name: f.default for cls in (SACConfig, RunConfig) for f in dataclasses.fields(cls)}

    def value(run: Run, key: str) -> str:
        v = run.config.get(key, defaults.get(key))
        return json.dumps(list(v) if isinstance(v, tuple) else v, sort_keys=True)

    by_preset = len({tuple(r.presets) for r in runs}) > 1
    labels = []
    for run in runs:
        peers = [r for r in runs if r.presets == run.presets]
        keys = sorted({k for r in peers for k in r.config} - NOT_CONFIG)
        differing = [k for k in keys if len({value(r, k) for r in peers}) > 1]
        parts = [f"{k}={value(run, k)}" for k in differing[:most]]
        if len(differing) > most:
            parts.append(f"+{len(differing) - most} more")
        head = (" + ".join(run.presets) or "defaults") if by_preset else ""
        labels.append(", ".join(p for p in [head, *parts] if p) or "SAC")
    return labels


def plot_comparison(runs: list[Run], out: Path, labels: list[str] | None = None) -> list[Path]:
    """(c) Per env: evaluation return, mean across each variant's seeds with a band, variants labelled."""
    plt = _pyplot()
    labels = labels or variant_labels(runs)
    written = []
    for env_id in sorted({r.env_id for r in runs}):
        groups: dict[str, list[Run]] = {}
        for run, label in zip(runs, labels):
            if run.env_id == env_id:
                groups.setdefault(label, []).append(run)
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for label, members in groups.items():
            curves = [m.series("eval/mean_return") for m in members]
            curves = [c for c in curves if len(c[0])]
            if not curves:
                continue
            end = min(c[0][-1] for c in curves)  # the steps every seed reached
            grid = np.unique(np.concatenate([c[0][c[0] <= end] for c in curves]))
            values = np.stack([np.interp(grid, s, v) for s, v in curves])
            mean = values.mean(0)
            if len(curves) == 1:
                (line,) = ax.plot(grid, mean, lw=2, label=f"{label} (1 seed)")
            else:
                low, high = (
                    (values.min(0), values.max(0)) if len(curves) == 2 else (mean - values.std(0), mean + values.std(0))
                )
                band = "min-max" if len(curves) == 2 else "+-1 std"
                (line,) = ax.plot(grid, mean, lw=2, label=f"{label} ({len(curves)} seeds, band {band})")
                ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2)
        _axes(ax, "evaluation return (deterministic)", f"{env_id}: mean across seeds")
        ax.legend(loc="best", fontsize=8)
        written.append(_save(fig, out / f"compare_{env_id.replace(':', '_').replace('/', '_')}.png"))
    return written


def _axes(ax, ylabel: str, title: str) -> None:
    ax.set_xlabel("env steps")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 4))


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def plot_runs(
    folders: list[str | Path], out: str | Path | None = None, smooth: int | None = None, labels: list[str] | None = None
) -> list[Path]:
    """Draw the figures for `folders` (see the module docstring); returns the PNG paths."""
    runs = [Run(f) for f in folders]
    if labels is not None and len(labels) != len(runs):
        raise PlotError(f"--labels gave {len(labels)} labels for {len(runs)} run folders: give one per folder")
    if len(runs) == 1:
        out = Path(out) if out else runs[0].folder
    else:
        out = Path(out) if out else Path("plots")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PlotError(f"cannot create the output folder '{out}' ({exc.strerror or exc})") from None
    if len(runs) == 1:
        return [plot_learning_curve(runs[0], out, smooth), plot_diagnostics(runs[0], out, smooth)]
    return plot_comparison(runs, out, labels)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="keras-sac-plot", description="Plot keras_sac run folders.")
    p.add_argument(
        "runs", nargs="+", help="train.py run folders; several: compared per env, seeds of one config averaged"
    )
    p.add_argument("--out", help="output folder (default: the run folder for one run, ./plots for several)")
    p.add_argument(
        "--smooth",
        type=int,
        help="moving-average window in logged rows (the learning curve: the env steps of N rows); default: "
        "1/20 of the run (diagnostics of fewer than 40 rows are not smoothed)",
    )
    p.add_argument("--labels", help="comma-separated label per run folder (default: the config values that differ)")
    args = p.parse_args(argv)
    if args.smooth is not None and args.smooth < 1:
        p.error(f"--smooth must be >= 1, got {args.smooth}")
    try:
        paths = plot_runs(args.runs, args.out, args.smooth, args.labels.split(",") if args.labels else None)
    except PlotError as exc:
        print(f"keras-sac-plot: error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


def console() -> None:
    """The `keras-sac-plot` command (pip install)."""
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
