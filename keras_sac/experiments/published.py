"""Our runs beside published figures: per env, each config's IQM and 95% CI of the evaluation return at 100k,
300k and 1M steps next to the published methods' returns at the same steps (configs/published/*.csv, one cited
row per method, task and step, so no network is needed), and a figure per env overlaying our learning curves
(mean across seeds, band: min to max) on the published points.

Our figure at a step is each seed's evaluation nearest to it, if one lies within 5% of the step (a run that
has not got there yet has none), aggregated as the sweep report aggregates: IQM with a stratified-bootstrap CI.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from keras_sac.config.sources import CONFIGS_DIR
from keras_sac.experiments.stats import interval

PUBLISHED_DIR = CONFIGS_DIR / "published"
STEPS = (100_000, 300_000, 1_000_000)
TOLERANCE = 0.05  # an evaluation counts for a step within 5% of it


def load_published(folder: Path = PUBLISHED_DIR) -> list[dict]:
    """Every row of every CSV in `folder` (lines starting with # are comments), numbers as numbers."""
    rows = []
    for path in sorted(folder.glob("*.csv")):
        with open(path, newline="") as f:
            reader = csv.DictReader(line for line in f if not line.startswith("#"))
            for row in reader:
                rows.append(
                    {**row, "step": int(row["step"]), "return": float(row["return"]), "seeds": int(row["seeds"])}
                )
    return rows


def task_of(env_id: str) -> str:
    """'HalfCheetah-v5' -> 'HalfCheetah' (the published rows name tasks without their Gym version)."""
    return env_id.rpartition(":")[2].rsplit("-v", 1)[0]


def at_step(evaluations: list[tuple[int, float]], step: int) -> float | None:
    """The evaluation return nearest to `step`, if within TOLERANCE of it."""
    if not evaluations:
        return None
    nearest_step, value = min(evaluations, key=lambda e: abs(e[0] - step))
    return value if abs(nearest_step - step) <= TOLERANCE * step else None


def beside_published(trials: list[dict], published: list[dict], steps: tuple[int, ...] = STEPS) -> dict:
    """{env_id: {"steps": steps, "ours": {label: {step: {iqm, ci, n}}}, "published": {method: {step: return}}}}
    for every env of `trials` with published rows."""
    out = {}
    for env_id in sorted({t["env_id"] for t in trials}):
        rows = [r for r in published if r["task"] == task_of(env_id)]
        if not rows:
            continue
        theirs: dict[str, dict[int, float]] = {}
        for r in rows:
            theirs.setdefault(r["method"], {})[r["step"]] = r["return"]
        ours: dict[str, dict[int, dict]] = {}
        for label in sorted({t["label"] for t in trials if t["env_id"] == env_id}):
            runs = [t for t in trials if t["env_id"] == env_id and t["label"] == label]
            for step in steps:
                values = [v for v in (at_step(t["evaluations"], step) for t in runs) if v is not None]
                if values:
                    iqm, low, high = interval({label: np.array([[v] for v in values])})[label]
                    ours.setdefault(label, {})[step] = {"iqm": iqm, "ci": [low, high], "n": len(values)}
        out[env_id] = {"steps": list(steps), "ours": ours, "published": theirs}
    return out


def _step_label(step: int) -> str:
    return f"{step // 1000:,}k" if step % 1000 == 0 else f"{step:,}"


def report_steps(total_timesteps: int | None) -> tuple[int, ...]:
    """The table's steps: 100k, 300k and 1M, and a sweep's own total where it is none of them."""
    return tuple(sorted({*STEPS, *([total_timesteps] if total_timesteps else [])}))


def published_markdown(beside: dict, published: list[dict]) -> list[str]:
    """The report's section: per env a table, our configs then the published methods, a column per step."""
    if not beside:
        return []
    lines = [
        "## Beside published figures",
        "",
        "Our IQM [95% CI] (seeds) of the evaluation nearest each step; published: the mean return each source "
        "reports (Gym v4 tasks; ours are v5, see the data file for the differences).",
        "",
    ]
    for env_id, env in beside.items():
        steps = env["steps"]
        lines += [
            f"### {env_id}",
            "",
            "| | " + " | ".join(_step_label(s) for s in steps) + " |",
            "|---|" + "---|" * len(steps),
        ]
        for label, by_step in env["ours"].items():
            cells = [
                f"**{c['iqm']:,.0f}** [{c['ci'][0]:,.0f}, {c['ci'][1]:,.0f}] ({c['n']})" if c else "–"
                for c in (by_step.get(s) for s in steps)
            ]
            lines.append(f"| ours: `{label}` | " + " | ".join(cells) + " |")
        for method, by_step in env["published"].items():
            cells = [f"{by_step[s]:,.0f}" if s in by_step else "–" for s in steps]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    sources = sorted({r["source"] for r in published})
    lines += ["Sources:", ""] + [f"- {s}" for s in sources] + [""]
    return lines


def plot_beside_published(trials: list[dict], beside: dict, out: Path, pyplot, save) -> list[Path]:
    """One figure per env: each config's evaluation curve (mean over seeds, band min to max) and the published
    methods' points. `pyplot`, `save`: the plot module's headless pyplot and atomic PNG writer."""
    plt, images = pyplot(), []
    for env_id, env in beside.items():
        fig, ax = plt.subplots(figsize=(11, 4.8))  # wide: the legend sits right of the axes, not on the curves
        ours_max = max((s for t in trials if t["env_id"] == env_id for s, _ in t["evaluations"]), default=0)
        for label in sorted({t["label"] for t in trials if t["env_id"] == env_id}):
            runs = [
                t["evaluations"] for t in trials if t["env_id"] == env_id and t["label"] == label and t["evaluations"]
            ]
            if not runs:
                continue
            steps = sorted({s for run in runs for s, _ in run})
            grid = np.array([[dict(run).get(s, np.nan) for s in steps] for run in runs])
            mean = np.nanmean(grid, axis=0)
            how = "1 seed" if len(runs) == 1 else f"{len(runs)} seeds: mean, band min to max"
            (line,) = ax.plot(steps, mean, label=f"ours: {label} ({how})")
            ax.fill_between(steps, np.nanmin(grid, axis=0), np.nanmax(grid, axis=0), color=line.get_color(), alpha=0.2)
        markers = "osD^v<>PX*"
        for i, (method, by_step) in enumerate(env["published"].items()):
            xs = [x for x in sorted(by_step) if x <= 1.05 * max(ours_max, min(by_step))]  # where our runs reach
            ax.scatter(
                xs,
                [by_step[x] for x in xs],
                marker=markers[i % len(markers)],
                s=30,
                color="none",  # hollow grey markers: published points never share a colour with our curves
                edgecolors=str(0.15 + 0.5 * i / max(1, len(env["published"]) - 1)),
                label=f"{method} (published)",
                zorder=3,
            )
        ax.xaxis.set_major_formatter(lambda x, _: f"{x / 1000:,.0f}k")
        ax.set_xlabel("env steps")
        ax.set_ylabel("evaluation return")
        ax.set_title(f"{env_id}: our evaluation curves and published returns")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        images.append(save(fig, out / f"published_{task_of(env_id)}.png"))
    return images
