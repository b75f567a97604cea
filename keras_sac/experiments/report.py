"""The report of a sweep: per env x config, final and best evaluation return over seeds, with rliable's
interquartile mean (IQM) and stratified-bootstrap 95% confidence intervals (Agarwal et al., "Deep RL at the
Edge of the Statistical Precipice", NeurIPS 2021), the probability of improvement between configs, and
learning curves with bands across seeds.

    python -m keras_sac.experiments.report sweeps/20261123-150000            # (or keras-sac-report ...)

Writes report.md, report.json (the same numbers, for scripts), iqm.png and compare_<env>.png into the sweep
folder (or --out). `final` is a run's last evaluation return, `best` its highest; a trial still running or
stopped early counts with the evaluations it has, and the report says how many steps each group reached.
Reads only files: no TensorFlow, no Ray.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from keras_sac.experiments.plot import PlotError, Run, _pyplot, _save, plot_comparison
from keras_sac.experiments.published import (
    beside_published,
    load_published,
    plot_beside_published,
    published_markdown,
    report_steps,
)
from keras_sac.experiments.stats import CI, REPS, improvement, interval
from keras_sac.experiments.sweep_plan import (
    MANIFEST_FILE,
    METRICS,
    TRIAL_FILE,
    read_manifest,
    trial_folders,
    trial_status,
)
from keras_sac.experiments.sweep_trial import scores
from keras_sac.extras import MissingExtra
from keras_sac.io.files import write_atomic
from keras_sac.io.run_files import METRICS_FILE, read_metrics


class ReportError(ValueError):
    """A folder that cannot be reported; the message names it and what is missing."""


def collect(sweep_dir: Path) -> list[dict]:
    """One record per trial folder: env, config label, values, seed, status, steps and evaluations."""
    if not sweep_dir.is_dir() or not (sweep_dir / MANIFEST_FILE).is_file():
        if not sweep_dir.exists():
            raise ReportError(f"'{sweep_dir}' does not exist: pass the folder sweep.py made (its --sweep-dir)")
        raise ReportError(f"'{sweep_dir}' is not a sweep folder (no {MANIFEST_FILE}): pass the folder sweep.py made")
    trials = []
    for folder in trial_folders(sweep_dir):
        info = json.loads((folder / TRIAL_FILE).read_text())
        rows = read_metrics(folder / METRICS_FILE) if (folder / METRICS_FILE).is_file() else []
        evaluations = [(int(r["step"]), r["eval/mean_return"]) for r in rows if "eval/mean_return" in r]
        trials.append(
            {
                "folder": str(folder.relative_to(sweep_dir)),
                "env_id": info["env_id"],
                "label": info["label"],
                "values": info["values"],
                "seed": info["seed"],
                "status": trial_status(folder),
                "attempts": len(info.get("attempts", [])),
                "steps": int(rows[-1]["step"]) if rows else 0,
                "evaluations": evaluations,
                **(scores([m for _, m in evaluations]) if evaluations else dict.fromkeys(METRICS)),
            }
        )
    if not any(t["evaluations"] for t in trials):
        raise ReportError(f"'{sweep_dir}' has no evaluated trial yet: report it after the first evaluations")
    return trials


def summarize(trials: list[dict], pairs: bool = True) -> dict:
    """Per env: per config the statistics of `final` and `best` across its seeds, and (`pairs`) P(X > Y)
    between every two configs."""
    out = {}
    for env_id in sorted({t["env_id"] for t in trials}):
        groups: dict[str, list[dict]] = {}
        for t in trials:
            if t["env_id"] == env_id and t["final"] is not None:
                groups.setdefault(t["label"], []).append(t)
        configs: dict[str, Any] = {}
        for which in ("final", "best"):
            scores = {label: np.array([[t[which]] for t in members]) for label, members in groups.items()}
            for label, (iqm, low, high) in interval(scores).items():
                values = scores[label][:, 0]
                configs.setdefault(
                    label,
                    {
                        "seeds": sorted(t["seed"] for t in groups[label]),
                        "steps": min(t["steps"] for t in groups[label]),
                        "status": sorted({t["status"] for t in groups[label]}),
                    },
                )
                configs[label][which] = {
                    "mean": float(values.mean()),
                    "std": float(values.std()),
                    "iqm": iqm,
                    "ci": [low, high],
                    "values": values.tolist(),
                }
        improvements = (
            [
                {
                    "x": a,
                    "y": b,
                    "metric": "final",
                    **dict(
                        zip(
                            ("p", "low", "high"),
                            improvement(
                                np.array([[t["final"]] for t in groups[a]]), np.array([[t["final"]] for t in groups[b]])
                            ),
                        )
                    ),
                }
                for a, b in itertools.combinations(sorted(groups), 2)
            ]
            if pairs
            else []
        )
        out[env_id] = {"configs": configs, "improvement": improvements}
    return out


def _cell(stats: dict) -> tuple[str, str]:
    low, high = stats["ci"]
    return f"{stats['mean']:.1f} ± {stats['std']:.1f}", f"{stats['iqm']:.1f} [{low:.1f}, {high:.1f}]"


def markdown(
    sweep_dir: Path,
    manifest: dict,
    trials: list[dict],
    summary: dict,
    images: list[Path],
    published: Sequence[str] = (),
) -> str:
    counts = {s: sum(t["status"] == s for t in trials) for s in ("finished", "pruned", "started", "new")}
    lines = [
        f"# Sweep report: {sweep_dir.name}",
        "",
        f"Command: `{' '.join(manifest.get('command', []))}`  ",
        f"Trials: {len(trials)} ({', '.join(f'{n} {s}' for s, n in counts.items() if n)}); written "
        f"{time.strftime('%Y-%m-%d %H:%M')} by `python -m keras_sac.experiments.report`.",
        "",
        f"`final` is each run's last evaluation return, `best` its highest. Mean ± std across seeds (population "
        f"std); IQM is the interquartile mean (25% trimmed; with under 4 seeds it is the mean) with a "
        f"{CI:.0%} stratified-bootstrap CI ({REPS} resamples, rliable). Few seeds give wide intervals: read "
        f"overlapping ones as no evidence of a difference.",
        "",
    ]
    definition = manifest.get("definition", {})
    searched = definition.get("search") == "optuna"  # one run per sampled config: a ranking, not statistics
    for env_id, env in ({} if searched else summary).items():
        lines += [
            f"## {env_id}",
            "",
            "| config | seeds | steps | final: mean ± std | final: IQM [95% CI] | "
            "best: mean ± std | best: IQM [95% CI] |",
            "|---|---|---|---|---|---|---|",
        ]
        ranked = sorted(env["configs"].items(), key=lambda kv: -kv[1]["final"]["iqm"])
        for label, c in ranked:
            lines.append(
                f"| `{label}` | {len(c['seeds'])} | {c['steps']:,} | "
                + " | ".join([*_cell(c["final"]), *_cell(c["best"])])
                + " |"
            )
        if env["improvement"]:
            lines += [
                "",
                "Probability of improvement, P(X > Y) on final return: the chance that a run of X beats "
                "a run of Y (0.5: no difference).",
                "",
                "| X | Y | P(X > Y) [95% CI] |",
                "|---|---|---|",
            ]
            for p in env["improvement"]:
                lines.append(f"| `{p['x']}` | `{p['y']}` | {p['p']:.2f} [{p['low']:.2f}, {p['high']:.2f}] |")
        lines.append("")
    lines += [*published, "## Figures", ""] + [f"![{p.stem}]({p.name})" for p in images] + [""]
    if searched:  # best first, by the metric the search maximised
        metric = definition.get("metric", "final")
        trials = sorted(trials, key=lambda t: -np.inf if t[metric] is None else -t[metric])
        lines += [f"Searched with Optuna and ASHA for the highest `{metric}`; trials best first.", ""]
    lines += [
        "## Trials",
        "",
        "| folder | values | status | attempts | steps | final | best | auc |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in trials:
        fmt = lambda v: "–" if v is None else f"{v:.1f}"  # noqa: E731
        lines.append(
            f"| {t['folder']} | `{t['label']}` | {t['status']} | {t['attempts']} | {t['steps']:,} | "
            f"{fmt(t['final'])} | {fmt(t['best'])} | {fmt(t['auc'])} |"
        )
    return "\n".join(lines) + "\n"


def plot_iqm(summary: dict, out: Path) -> Path:
    """One panel per env: each config's IQM of final and best return with its CI."""
    plt = _pyplot()
    envs = list(summary)
    height = max(3.0, 0.5 * max(len(e["configs"]) for e in summary.values()) + 2.0)
    fig, axes = plt.subplots(1, len(envs), figsize=(6 * len(envs), height), squeeze=False)
    for ax, env_id in zip(axes[0], envs):
        configs = sorted(summary[env_id]["configs"].items(), key=lambda kv: kv[1]["final"]["iqm"])
        for offset, which, colour in ((-0.15, "final", "tab:blue"), (0.15, "best", "tab:orange")):
            ys = np.arange(len(configs)) + offset
            iqm = np.array([c[which]["iqm"] for _, c in configs])
            ci = np.array([c[which]["ci"] for _, c in configs])
            ax.errorbar(
                iqm,
                ys,
                xerr=[iqm - ci[:, 0], ci[:, 1] - iqm],
                fmt="o",
                color=colour,
                capsize=3,
                label=f"{which} return",
            )
        ax.set_yticks(np.arange(len(configs)))
        ax.set_yticklabels([f"{label} ({len(c['seeds'])} seeds)" for label, c in configs], fontsize=8)
        ax.set_xlabel(f"evaluation return: IQM, {CI:.0%} bootstrap CI")
        ax.set_title(env_id, fontsize=10)
        ax.grid(alpha=0.3, axis="x")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2, frameon=False)
    return _save(fig, out / "iqm.png")


def write_report(sweep_dir: str | Path, out: str | Path | None = None) -> list[Path]:
    """report.md, report.json, iqm.png and compare_<env>.png; returns their paths (report.md first)."""
    sweep_dir = Path(sweep_dir)
    trials = collect(sweep_dir)
    manifest = read_manifest(sweep_dir) or {}
    out = Path(out) if out else sweep_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create the output folder '{out}' ({exc.strerror or exc})") from None
    summary = summarize(trials, pairs=manifest.get("definition", {}).get("search", "grid") == "grid")
    evaluated = [t for t in trials if t["evaluations"]]
    published = load_published()
    beside = beside_published(trials, published, report_steps(manifest.get("definition", {}).get("total_timesteps")))
    images = [plot_iqm(summary, out), *plot_beside_published(trials, beside, out, _pyplot, _save)]
    try:
        images += plot_comparison(
            [Run(sweep_dir / t["folder"]) for t in evaluated], out, [t["label"] for t in evaluated]
        )
    except PlotError:
        pass
    report = {"sweep": str(sweep_dir), "trials": trials, "summary": summary, "beside_published": beside}
    write_atomic(out / "report.json", json.dumps(report, indent=2))
    text = markdown(sweep_dir, manifest, trials, summary, images, published_markdown(beside, published))
    write_atomic(out / "report.md", text)
    return [out / "report.md", out / "report.json", *images]


def main(argv=None, prog: str = "python -m keras_sac.experiments.report") -> int:
    p = argparse.ArgumentParser(prog=prog, description="Statistics and figures of a keras_sac sweep folder.")
    p.add_argument("sweep_dir", type=Path, help="a folder made by sweep.py")
    p.add_argument("--out", type=Path, help="where to write (default: the sweep folder)")
    args = p.parse_args(argv)
    try:
        written = write_report(args.sweep_dir, args.out)
    except (ReportError, MissingExtra) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


def console() -> None:
    """The `keras-sac-report` command (pip install)."""
    sys.exit(main(prog="keras-sac-report"))


if __name__ == "__main__":
    sys.exit(main())
