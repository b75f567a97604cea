"""docs/results.md from data: run summaries committed under docs/data/, tables and figures rebuilt from them.

    python -m keras_sac.experiments.results collect sweeps/mujoco-100k --name mujoco-100k   # -> docs/data/
    python -m keras_sac.experiments.results collect runs/screen --name screening            # plain run folders
    python -m keras_sac.experiments.results take screening --env Walker2d-v5 --config crossq \\
        --as Walker2d-v5-crossq --name mujoco-suite                                         # runs of another set
    python -m keras_sac.experiments.results build                                           # -> docs/results.md

`collect` reads run folders (a sweep's trials, or every run folder below a folder) and writes two small files:
`<name>.csv`, every evaluation of every run (env, config, seed, step, return), and `<name>.json`, per run its
config, wall-clock, steps and the commit it ran at. Checkpoints are never copied. `take` copies one env's runs
of one config from a data set into another (relabelled with `--as`), so a table can gather runs first collected
for another without their folders.

`build` rewrites each block of docs/results.md that starts with `<!-- results: NAME -->` (or
`<!-- results: NAME steps=50000,100000 -->` for other columns) and ends with `<!-- end results -->` from
`docs/data/NAME.csv`: per env, each config's IQM and 95% CI at 100k / 300k / 1M steps beside the published
figures (the sweep report's table, `published.py`), and a figure per env in
docs/img/results/. Everything else in the file is left as written; one block per data set is one figure per
claim.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

from keras_sac.experiments.plot import _pyplot, _save
from keras_sac.experiments.published import (
    STEPS,
    beside_published,
    load_published,
    plot_beside_published,
    published_markdown,
)
from keras_sac.experiments.sweep_plan import TRIAL_FILE
from keras_sac.io.files import write_atomic
from keras_sac.io.run_files import CONFIG_FILE, METRICS_FILE, RUN_FILE, read_metrics

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR, RESULTS_FILE, IMG_DIR = (
    ROOT / "docs" / "data",
    ROOT / "docs" / "results.md",
    ROOT / "docs" / "img" / "results",
)
BLOCK = re.compile(
    r"(<!-- results: (?P<name>[\w.-]+)(?: steps=(?P<steps>[\d,]+))? -->\n)(?P<body>.*?)(?P<end><!-- end results -->)",
    re.S,
)
COLUMNS = ("env", "config", "seed", "step", "return")


class ResultsError(ValueError):
    """Missing or unusable data; the message names the path and the fix."""


def run_folders(root: Path) -> list[Path]:
    """Every train.py run folder at or below `root` (it has run.json and metrics.csv), sorted."""
    return sorted(p.parent for p in root.rglob(RUN_FILE) if (p.parent / METRICS_FILE).is_file())


def describe(run_dir: Path, root: Path) -> dict:
    """A run's env, config label and seed (a sweep trial's own, else from its folder: <env>/<config>/seed<k>),
    its evaluations and what it ran at."""
    record = json.loads((run_dir / RUN_FILE).read_text())
    if (run_dir / TRIAL_FILE).is_file():
        trial = json.loads((run_dir / TRIAL_FILE).read_text())
        label, seed = trial["label"], int(trial["seed"])
    else:
        parts = run_dir.relative_to(root).parts
        label = parts[-2] if len(parts) >= 2 else "default"
        seed = int(re.sub(r"\D", "", parts[-1]) or 0) if parts and parts[-1].startswith("seed") else 0
    rows = read_metrics(run_dir / METRICS_FILE)
    evaluations = [(int(r["step"]), r["eval/mean_return"]) for r in rows if "eval/mean_return" in r]
    return {
        "env_id": record["env_id"],
        "label": label,
        "seed": seed,
        "evaluations": evaluations,
        "folder": str(run_dir.relative_to(root)),
        "started": record.get("started"),
        "steps": int(rows[-1]["step"]) if rows else 0,
        "wall_seconds": rows[-1].get("time/elapsed_s") if rows else None,
        "commit": _commit_of(record),
        "machine": record.get("machine"),
        "config": (run_dir / CONFIG_FILE).read_text() if (run_dir / CONFIG_FILE).is_file() else None,
        **({"env_kwargs": record["env_kwargs"]} if record.get("env_kwargs") else {}),  # gym.make's, if any
    }


def _commit_of(record: dict) -> str | None:
    return record.get("commit")  # (run folders written before keras_sac recorded it have none)


def _run_key(run: dict) -> tuple:
    """A run's identity in a data set: (env, config label, seed)."""
    return run["env_id"], run["label"], run["seed"]


# a run's record in <name>.json; env_kwargs only where the run had any
META_KEYS = (
    "env_id",
    "label",
    "seed",
    "folder",
    "started",
    "steps",
    "wall_seconds",
    "commit",
    "machine",
    "config",
    "env_kwargs",
)


def collect(
    root: Path, name: str, data_dir: Path = DATA_DIR, commit: str | None = None, merge: bool = False
) -> list[Path]:
    """Write data_dir/<name>.csv and .json from the run folders below `root`. `commit`: the code's commit for
    runs whose run.json does not record one (started before keras_sac recorded it). `merge`: keep the data
    set's other runs (from earlier collections, whose folders may be gone) and replace only the (env, config,
    seed) runs found here."""
    folders = run_folders(root)
    if not folders:
        raise ResultsError(f"no train.py run folder (run.json and metrics.csv) at or below '{root}'")
    runs = [describe(f, root) for f in folders]
    for r in runs:
        r["commit"] = r["commit"] or commit
    return _write(name, data_dir, runs, [{k: r[k] for k in META_KEYS if k in r} for r in runs], str(root), merge)


def take(
    source: str, env_id: str, label: str, name: str, new_label: str | None = None, data_dir: Path = DATA_DIR
) -> list[Path]:
    """Merge one config's runs on one env from data set `source` into data set `name`, as `new_label` (default:
    the same label): a table that gathers runs first collected for another (a screening winner's seeds as its
    preset's row) without their run folders, which may be gone. The runs keep their records, with `taken_from`
    saying where they were collected; `name`'s runs of the same (env, label, seed) are replaced."""
    new_label = new_label or label
    runs = read_data(source, data_dir)
    trials = [t for t in runs if (t["env_id"], t["label"]) == (env_id, label)]
    if not trials:
        known = sorted({f"{t['env_id']}:{t['label']}" for t in runs})
        raise ResultsError(f"data set '{source}' has no runs of {env_id}:{label} (it has: {', '.join(known)})")
    meta = {_run_key(r): r for r in json.loads((data_dir / f"{source}.json").read_text())["runs"]}
    meta_runs = []
    for t in trials:
        record = meta.get(_run_key(t), {"env_id": env_id, "seed": t["seed"]})
        meta_runs.append({**record, "label": new_label, "taken_from": f"{source}:{label}"})
        t["label"] = new_label
    return _write(name, data_dir, trials, meta_runs, f"{source}:{env_id}:{label}", merge=True)


def _write(name: str, data_dir: Path, evaluated: list, meta_runs: list, source: str, merge: bool) -> list[Path]:
    """data_dir/<name>.csv and .json from runs (`evaluated`: with their evaluations; `meta_runs`: their
    records); `merge` keeps the data set's runs of other (env, config, seed) keys."""
    data_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = data_dir / f"{name}.csv", data_dir / f"{name}.json"
    sources = [source]
    if merge and csv_path.is_file() and json_path.is_file():
        fresh = {_run_key(r) for r in evaluated}
        old = json.loads(json_path.read_text())
        sources = [*str(old.get("source", "")).split("; "), *sources]
        meta_runs = meta_runs + [r for r in old["runs"] if _run_key(r) not in fresh]
        evaluated = evaluated + [t for t in read_data(name, data_dir) if _run_key(t) not in fresh]
    rows = sorted((*_run_key(r), step, value) for r in evaluated for step, value in r["evaluations"])
    meta_runs = sorted(meta_runs, key=_run_key)
    lines = [",".join(COLUMNS)] + [f"{env},{label},{seed},{step},{value:.2f}" for env, label, seed, step, value in rows]
    write_atomic(csv_path, "\n".join(lines) + "\n")
    meta = {"source": "; ".join(dict.fromkeys(s for s in sources if s)), "collected_at_commit": _git_head()}
    write_atomic(json_path, json.dumps({**meta, "runs": meta_runs}, indent=1) + "\n")
    return [csv_path, json_path]


def _git_head() -> str | None:
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or None
        )
    except OSError:
        return None


def read_data(name: str, data_dir: Path = DATA_DIR) -> list[dict]:
    """docs/data/<name>.csv as one trial record per (env, config, seed), as the report's `collect` gives them."""
    path = data_dir / f"{name}.csv"
    if not path.is_file():
        raise ResultsError(
            f"no data '{path}': collect it first (python -m keras_sac.experiments.results collect RUNS --name {name})"
        )
    trials: dict[tuple, dict] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            key = (row["env"], row["config"], int(row["seed"]))
            trial = trials.setdefault(key, {"env_id": key[0], "label": key[1], "seed": key[2], "evaluations": []})
            trial["evaluations"].append((int(row["step"]), float(row["return"])))
    return list(trials.values())


def runs_markdown(name: str, data_dir: Path = DATA_DIR) -> list[str]:
    """A folded table of the runs behind a block, from docs/data/<name>.json: per run its steps, wall-clock,
    commit, start date and machine (and the data set it was taken from), so each figure says what made it."""
    path = data_dir / f"{name}.json"
    if not path.is_file():
        return []
    runs = json.loads(path.read_text())["runs"]
    lines = [
        f"<details><summary>The {len(runs)} runs behind this table (docs/data/{name}.json)</summary>",
        "",
        "| env | config | seed | steps | wall-clock | commit | started | CPU, cores |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        wall = f"{r['wall_seconds'] / 60:,.0f} min" if r.get("wall_seconds") is not None else "–"
        machine = r.get("machine") or {}
        kind = ", ".join(machine[k] for k in ("cpu_id", "isa") if machine.get(k))  # recorded since 2026-12-04
        cpu = f"{machine.get('cpu', '?')}" + (f" ({kind})" if kind else "") + f", {machine.get('cores', '?')}"
        taken = f" (from `{r['taken_from']}`)" if r.get("taken_from") else ""
        cells = [r["env_id"], f"`{r['label']}`{taken}", str(r["seed"]), f"{r.get('steps', 0):,}", wall]
        cells += [f"`{(r.get('commit') or '–')[:7]}`", str(r.get("started") or "–")[:10], cpu if machine else "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, "", "</details>"]


def build(results_file: Path = RESULTS_FILE, data_dir: Path = DATA_DIR, img_dir: Path = IMG_DIR) -> list[str]:
    """Rewrite every results block of `results_file` from its data; returns the names rebuilt."""
    text = results_file.read_text()
    published, rebuilt = load_published(), []

    def block(match: re.Match) -> str:
        name = match["name"]
        trials = read_data(name, data_dir)
        total = max(step for t in trials for step, _ in t["evaluations"])
        steps = tuple(sorted({*(s for s in STEPS if s <= 1.05 * total), total}))
        if match["steps"]:  # the block names its own columns, e.g. steps=50000,100000
            steps = tuple(int(s) for s in match["steps"].split(",") if s)
        beside = beside_published(trials, published, steps)
        out = img_dir / name
        out.mkdir(parents=True, exist_ok=True)
        images = plot_beside_published(trials, beside, out, _pyplot, _save)
        lines = published_markdown(beside, published)[2:]  # the block's own heading is the document's
        rel = [p.relative_to(results_file.parent) for p in images]
        figures = [f"![{p.stem}]({p.as_posix()})" for p in rel]
        body = "\n".join([*lines, *figures, "", *runs_markdown(name, data_dir), ""])
        rebuilt.append(name)
        return f"{match.group(1)}{body}\n{match['end']}"

    new = BLOCK.sub(block, text)
    write_atomic(results_file, new)
    return rebuilt


def main(argv=None, prog: str = "python -m keras_sac.experiments.results") -> int:
    p = argparse.ArgumentParser(prog=prog, description="docs/results.md from committed run summaries.")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="write docs/data/<name>.csv/.json from run folders")
    c.add_argument("root", type=Path, help="a sweep folder, or any folder holding train.py run folders")
    c.add_argument("--name", required=True, help="the data set's name (docs/data/<name>.csv)")
    c.add_argument("--data-dir", type=Path, default=DATA_DIR)
    c.add_argument("--commit", help="the commit runs ran at, where their run.json does not say (older runs)")
    c.add_argument(
        "--merge",
        action="store_true",
        help="keep the data set's other runs and replace only the (env, config, seed) runs found under root",
    )
    t = sub.add_parser("take", help="merge one env's runs of one config from another data set into a data set")
    t.add_argument("source", help="the data set the runs are in (docs/data/<source>.csv)")
    t.add_argument("--env", required=True, help="the env id, e.g. Walker2d-v5")
    t.add_argument("--config", required=True, help="the runs' config label in the source data set")
    t.add_argument("--as", dest="new_label", help="their label in the target data set (default: the same)")
    t.add_argument("--name", required=True, help="the target data set (created if missing)")
    t.add_argument("--data-dir", type=Path, default=DATA_DIR)
    b = sub.add_parser("build", help="rebuild docs/results.md's results blocks from docs/data/")
    b.add_argument("--results", type=Path, default=RESULTS_FILE)
    b.add_argument("--data-dir", type=Path, default=DATA_DIR)
    b.add_argument("--img-dir", type=Path, default=IMG_DIR)
    args = p.parse_args(argv)
    try:
        if args.command == "collect":
            for path in collect(args.root, args.name, args.data_dir, args.commit, args.merge):
                print(path)
        elif args.command == "take":
            for path in take(args.source, args.env, args.config, args.name, args.new_label, args.data_dir):
                print(path)
        else:
            names = build(args.results, args.data_dir, args.img_dir)
            print(f"{args.results}: rebuilt {', '.join(names) if names else 'no block (none marked)'}")
    except ResultsError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
