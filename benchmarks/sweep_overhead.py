"""A sweep on the embedded Ray against the same trials run one after another with train.py, in one run.

    python benchmarks/sweep_overhead.py --trials 4 --total-timesteps 10000

Both sides train InvertedPendulum-v5 with its shipped config, seeds 0..trials-1, `--total-timesteps` each.
Sequential: `train.py --seed k` in turn, TensorFlow's default threads (all cores). Sweep: `sweep.py --seeds
0-(trials-1)`, cores/1 trials at once with one TensorFlow thread each. Prints both wall-clocks (whole commands,
start to exit), their ratio, and Ray's overhead from the sweep's manifest: Ray's start-up, and per trial the
median time from Tune starting it to its function running in a worker and from its end to Tune seeing it.
Run it on a quiet machine: other processes change the ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import machine_line  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=4)
    p.add_argument("--total-timesteps", type=int, default=10_000)
    args = p.parse_args()
    env, steps = "InvertedPendulum-v5", str(args.total_timesteps)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sequential = []
        for seed in range(args.trials):
            sequential.append(
                timed(
                    [
                        sys.executable,
                        str(REPO / "train.py"),
                        "--env",
                        env,
                        "--seed",
                        str(seed),
                        "--total-timesteps",
                        steps,
                        "--run-dir",
                        f"seq{seed}",
                        "--no-progress",
                    ],
                    tmp,
                )
            )
            print(f"sequential run {seed}: {sequential[-1]:.1f} s", flush=True)
        sweep = timed(
            [
                sys.executable,
                str(REPO / "sweep.py"),
                "--env",
                env,
                "--seeds",
                f"0-{args.trials - 1}",
                "--total-timesteps",
                steps,
                "--sweep-dir",
                "sweep",
            ],
            tmp,
        )
        session = json.loads((tmp / "sweep" / "sweep.json").read_text())["sessions"][-1]
        finals = {
            "sequential": [
                json.loads((tmp / f"seq{s}" / "summary.json").read_text())["final_eval_mean_return"]
                for s in range(args.trials)
            ],
            "sweep": [
                json.loads((tmp / "sweep" / env / "default" / f"seed{s}" / "summary.json").read_text())[
                    "final_eval_mean_return"
                ]
                for s in range(args.trials)
            ],
        }
    print(machine_line())
    print(f"{args.trials} x {env}, {steps} steps each")
    print(f"sequential train.py: {sum(sequential):.1f} s (per run: {', '.join(f'{t:.1f}' for t in sequential)})")
    print(
        f"sweep.py:            {sweep:.1f} s ({session['concurrent']} at once, {session['threads_per_trial']} "
        f"thread each; Ray start-up {session['ray_start_s']:.1f} s; per trial, median: launch "
        f"{session['trial_launch_s']:.2f} s, finish {session['trial_finish_s']:.2f} s)"
    )
    print(f"sweep / sequential:  {sweep / sum(sequential):.2f}")
    print(f"final evaluation returns: sequential {finals['sequential']}, sweep {finals['sweep']}")


if __name__ == "__main__":
    main()
