"""Image and Dict observations: training speed against SB3's CnnPolicy, replay bytes, latency, n_envs.

    python benchmarks/pixels.py --peers /path/to/peer-venv/bin/python --repeats 3
    python benchmarks/pixels.py --skip train memory --vector        # only env steps/s against n_envs

The pixel env is Pendulum-v1 through keras_sac's `pixels: {size: [64, 64], grayscale: true, frame_stack: 3}`
(uint8 (3, 64, 64)); SB3 gets the same wrappers (benchmarks/peer_pixels.py). Training: NatureCNN (SB3's
default extractor, 512 features) and 256x256 heads on both sides, batch 64, learning_starts 200, one gradient
step per env step, env steps/s between step 400 and `--steps`. keras_sac runs twice: with its default shared
encoder, and with `share_encoder: false` — SB3's layout (actor and critics each with their own CNN). Each
repeat runs ours, then SB3, in fresh processes, so the ratios compare runs under the same machine load.

Also: replay bytes per stored transition (ours plain and compact, SB3's optimize_memory_usage), single-
observation action latency for the pixel policy and a Dict policy (keras_sac/PointGoal-v0), and with
`--vector` env steps/s against n_envs 1/2/4/8, sync and async: collection alone (uniform random actions,
no updates) and training at one gradient step per vector step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput  # noqa: E402
from throughput import _quiet_tf, _runs, machine_line, median_us, serve_child  # noqa: E402

PEER_SCRIPT = Path(__file__).resolve().parent / "peer_pixels.py"
PIXELS = {"size": [64, 64], "grayscale": True, "frame_stack": 3}
TRAIN = {
    "pixels": PIXELS,
    "encoder": "nature_cnn",
    "batch_size": 64,
    "learning_starts": 200,
    "buffer_size": 20_000,
    "seed": 0,
}


# ----------------------------------------------------------------------------------- measurements (child)
def measure_train(steps: int, settings: str = "{}") -> dict:
    """Env steps/s on pixel Pendulum between step 400 and `steps` (as peer_pixels.py measures SB3)."""
    _quiet_tf()
    from keras_sac import KerasSAC

    agent = KerasSAC("Pendulum-v1", **{**TRAIN, **json.loads(settings)})
    marks = {}

    def clock(a):
        if a.num_timesteps in (400, steps):
            marks[a.num_timesteps] = time.perf_counter()

    agent.learn(steps, callback=clock)
    agent.close()
    return {"train_steps_per_s": round((steps - 400) / (marks[steps] - marks[400]), 2)}


def measure_vector(n_envs: int, mode: str, train: str, steps: int) -> dict:
    """Env steps/s with n_envs pixel Pendulums: `train` "none" (random actions, no updates: the envs alone)
    or "utd" (one gradient step per vector step, after learning_starts 200); timed over the last steps."""
    _quiet_tf()
    from keras_sac import KerasSAC

    starts = 10**9 if train == "none" else 200
    agent = KerasSAC(
        "Pendulum-v1",
        **{**TRAIN, "n_envs": n_envs, "vectorization": mode, "learning_starts": starts, "buffer_size": 20_000},
    )
    agent.learn(max(400, 8 * n_envs))  # warm-up: processes started, graphs traced
    start, before = time.perf_counter(), agent.num_timesteps
    agent.learn(steps, reset_num_timesteps=False)
    rate = (agent.num_timesteps - before) / (time.perf_counter() - start)
    agent.close()
    return {"env_steps_per_s": round(rate, 1)}


def measure_bytes() -> dict:
    _quiet_tf()
    from keras_sac import KerasSAC

    out = {}
    for name, compact in (("plain", False), ("compact", True)):
        agent = KerasSAC("Pendulum-v1", **{**TRAIN, "optimize_memory_usage": compact, "buffer_size": 1000})
        out[name] = agent.buffer.bytes_per_transition()
        agent.close()
    return out


def measure_latency(n: int = 1000) -> dict:
    """Median single-observation action latency (predict, both modes, and the SavedModel signature) for the
    pixel policy (small and nature_cnn encoders) and for PointGoal's Dict policy."""
    _quiet_tf()
    import tempfile

    import tensorflow as tf

    from keras_sac import KerasSAC

    out = {}
    cases = {
        "pixels nature_cnn": ("Pendulum-v1", {**TRAIN}),
        "pixels small": ("Pendulum-v1", {**TRAIN, "encoder": "small"}),
        "Dict PointGoal": ("keras_sac/PointGoal-v0", {"seed": 0}),
    }
    for name, (env_id, settings) in cases.items():
        agent = KerasSAC(env_id, **{**settings, "buffer_size": 1000})
        obs = agent.env.reset(seed=0)[0]
        with tempfile.TemporaryDirectory() as tmp:
            serve = tf.saved_model.load(str(agent.export(Path(tmp) / "p"))).signatures["serving_default"]
            inputs = (
                {k: tf.constant(v[None]) for k, v in obs.items()}
                if isinstance(obs, dict)
                else {"observation": tf.constant(obs[None])}
            )
            saved = round(median_us(lambda: serve(**inputs)["action"].numpy(), n), 1)
        out[name] = {
            "predict_deterministic_us": round(median_us(lambda: agent.predict(obs, deterministic=True), n), 1),
            "predict_stochastic_us": round(median_us(lambda: agent.predict(obs), n), 1),
            "savedmodel_signature_us": saved,
        }
        agent.close()
    return out


CHILD = {"train": measure_train, "vector": measure_vector, "bytes": measure_bytes, "latency": measure_latency}


# ----------------------------------------------------------------------------------- orchestration (parent)
def run_child(*args) -> dict:
    return throughput.run_child(*args, script=__file__)


def run_peer(python: str, *args) -> dict:
    out = subprocess.run([python, str(PEER_SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"peer failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_train(repeats: int, steps: int, peers: str | None) -> None:
    ours = {"keras_sac (shared encoder, default)": {}, "keras_sac share_encoder: false": {"share_encoder": False}}
    results = {name: [] for name in [*ours, *(["SB3 CnnPolicy"] if peers else [])]}
    for _ in range(repeats):
        for name, settings in ours.items():
            results[name].append(run_child("train", steps, json.dumps(settings))["train_steps_per_s"])
        if peers:
            results["SB3 CnnPolicy"].append(run_peer(peers, "train", steps)["train_steps_per_s"])
    medians = {name: statistics.median(runs) for name, runs in results.items()}
    for name, runs in results.items():
        line = f"pixel Pendulum training: {name} {medians[name]:.2f} env steps/s (runs {_runs(runs)})"
        if peers and name != "SB3 CnnPolicy":
            line += f" -> {medians[name] / medians['SB3 CnnPolicy']:.2f}x SB3"
        print(line, flush=True)


def run_vector(repeats: int, steps: int) -> None:
    print(f"pixel Pendulum env steps/s against n_envs ({steps} env steps timed after a warm-up, medians of {repeats})")
    print("| n_envs | vectorization | envs alone (random actions) | training, 1 gradient step per vector step |")
    print("| --- | --- | --- | --- |")
    for n in (1, 2, 4, 8):
        for mode in ["sync"] if n == 1 else ["sync", "async"]:
            cells = []
            for train in ("none", "utd"):
                runs = [
                    run_child("vector", n, mode, train, steps if train == "none" else max(steps // 4, 8 * n))[
                        "env_steps_per_s"
                    ]
                    for _ in range(repeats)
                ]
                cells.append(f"{statistics.median(runs):.1f} (runs {_runs(runs)})")
            print(f"| {n} | {mode} | {cells[0]} | {cells[1]} |", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=900, help="training steps per run (timed from step 400)")
    p.add_argument(
        "--peers", metavar="PYTHON", help="python of a virtualenv with stable-baselines3 (and opencv, pygame)"
    )
    p.add_argument("--skip", nargs="*", default=[], choices=["train", "memory", "latency"])
    p.add_argument("--vector", action="store_true", help="also env steps/s against n_envs 1/2/4/8, sync and async")
    p.add_argument("--vector-steps", type=int, default=800)
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return serve_child(CHILD, args.child)
    print(f"machine: {machine_line()}")
    if "train" not in args.skip:
        run_train(args.repeats, args.steps, args.peers)
    if "memory" not in args.skip:
        ours = run_child("bytes")
        line = f"replay bytes per pixel transition: keras_sac plain {ours['plain']}, compact {ours['compact']}"
        if args.peers:
            sb3 = run_peer(args.peers, "bytes")["bytes_per_transition"]
            line += f"; SB3 optimize_memory_usage {sb3:.0f} (keras_sac compact: {ours['compact'] / sb3:.2f}x)"
        print(line, flush=True)
    if "latency" not in args.skip:
        for name, values in run_child("latency").items():
            print(
                f"latency, one observation, {name}: " + ", ".join(f"{k} {v:.1f}" for k, v in values.items()), flush=True
            )
    if args.vector:
        run_vector(args.repeats, args.vector_steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
