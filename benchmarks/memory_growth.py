"""Memory and speed of a long training run as its work grows (issue #29, item 4).

    python benchmarks/memory_growth.py                                  # HalfCheetah-v5, 200k steps
    python benchmarks/memory_growth.py --steps 30000 --every 5000 --json out.json

Runs `train.py` (the user's command: evaluations, metrics.csv, TensorBoard events, checkpoints, the 1M-transition
replay buffer) in a child process and samples the child's /proc status every second. At every `--every` env
steps (read from metrics.csv) it records RSS and anonymous RSS. The replay buffer's arrays are allocated up front
but page in as they are written, so anonymous RSS grows by the buffer's bytes per transition with every step;
`other_mb` (anonymous RSS minus the buffer bytes written so far) is everything else, and is what must stay flat
from `--baseline` on (after learning starts and the update is traced): growth there is tracing, logging or
TensorBoard holding on to memory. Speed, in the first and the last window of `--every` steps after learning
starts: the median of metrics.csv's `time/steps_per_second` rows (a median, so the rows that include an evaluation
do not count), and the child's CPU time per env step (user + system from /proc, evaluations included), which other
work on a shared machine changes far less than it changes wall time.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _status_mb(pid: int) -> dict[str, float] | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "RssAnon", "VmHWM") if key in fields}


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15 of stat)


def _rows(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.csv"
    if not path.exists():
        return []
    with path.open() as f:
        return [row for row in csv.DictReader(f) if row.get("step")]


def _bytes_per_transition(env_id: str) -> int:
    sys.path.insert(0, str(ROOT))
    from keras_sac.io.startup import quiet_tensorflow_startup

    with quiet_tensorflow_startup():
        from keras_sac import KerasSAC

    return KerasSAC(env_id, buffer_size=1000).buffer.bytes_per_transition()


def run(env_id: str, steps: int, every: int, run_dir: Path, settings: list[str], baseline: int) -> dict:
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "--env",
        env_id,
        "--total-timesteps",
        str(steps),
        "--seed",
        "0",
        "--run-dir",
        str(run_dir),
        "--no-progress",
        "--force",
        *(arg for setting in settings for arg in ("--set", setting)),
    ]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    samples: list[dict] = []
    next_mark = every
    while child.poll() is None:
        time.sleep(1.0)
        status, cpu = _status_mb(child.pid), _cpu_seconds(child.pid)
        rows = _rows(run_dir)
        if status is None or cpu is None or not rows:
            continue
        step = int(float(rows[-1]["step"]))
        if step >= next_mark:
            samples.append({"step": step, **status, "cpu_s": cpu})
            print(json.dumps(samples[-1]), flush=True)
            next_mark = (step // every + 1) * every
    if child.returncode != 0:
        raise SystemExit(
            f"train.py failed ({child.returncode}):\n{child.stderr.read()[-3000:] if child.stderr else ''}"
        )
    per_transition = _bytes_per_transition(env_id)
    for s in samples:
        s["buffer_mb"] = s["step"] * per_transition / 2**20
        s["other_mb"] = s["RssAnon"] - s["buffer_mb"]
    rows = _rows(run_dir)
    start = min(int(float(r["step"])) for r in rows if r.get("time/steps_per_second"))

    def speed(lo: int, hi: int) -> float:
        values = [
            float(r["time/steps_per_second"])
            for r in rows
            if lo < int(float(r["step"])) <= hi and r.get("time/steps_per_second")
        ]
        return statistics.median(values)

    def cpu_ms_per_step(lo: int, hi: int) -> float:
        a, b = (min(samples, key=lambda s: abs(s["step"] - x)) for x in (lo, hi))
        return (b["cpu_s"] - a["cpu_s"]) / max(1, b["step"] - a["step"]) * 1e3

    first = max(start, every)
    base = next(s for s in samples if s["step"] >= baseline)  # training has started and traced its functions
    return {
        "env": env_id,
        "steps": steps,
        "bytes_per_transition": per_transition,
        "samples": samples,
        "baseline_step": base["step"],
        "other_mb_at_baseline": base["other_mb"],
        "other_mb_last": samples[-1]["other_mb"],
        "other_mb_growth": samples[-1]["other_mb"] - base["other_mb"],
        "peak_rss_mb": max(s["VmHWM"] for s in samples),
        "steps_per_s_first": speed(first, first + every),
        "steps_per_s_last": speed(steps - every, steps),
        "cpu_ms_per_step_first": cpu_ms_per_step(first, first + every),
        "cpu_ms_per_step_last": cpu_ms_per_step(steps - every, steps),
        "threads": {k: os.environ.get(k, "") for k in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--steps", type=int, default=200_000)
    p.add_argument("--every", type=int, default=10_000)
    p.add_argument("--run-dir", type=Path, help="train.py's run folder (default: a temporary folder)")
    p.add_argument("--json", type=Path, help="also write the result here")
    p.add_argument("--baseline", type=int, default=20_000, help="growth is counted from the first sample here")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE", help="train.py --set")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.env, args.steps, args.every, args.run_dir or Path(tmp) / "run", args.settings, args.baseline)
    summary = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
