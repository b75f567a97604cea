"""Throughput of keras_sac on this machine, optionally side by side with Stable-Baselines3 and SBX.

    python benchmarks/throughput.py                               # ours only
    python benchmarks/throughput.py --peers /path/to/peer-venv/bin/python --repeats 3

Every figure is the median of `--repeats` fresh processes (no warm caches shared between repeats).
Training speed is measured exactly as ../shared/bench/peer_speed.py measures the peers: SB3 defaults
(256x256 networks, batch 256, one gradient step per env step) with learning_starts=1000, env steps per
second between step 2000 and the last step. With --peers, each repeat runs ours, then SB3, then SBX, so
the ratios compare runs made under the same machine load.

Also printed: update-only updates/s (the compiled train step on a fixed batch), single-observation
action latency (`predict` and the exported SavedModel's signature), the FLOPs of one update and the
fraction of the measured fp32 matmul peak they reach, replay-buffer bytes per transition and the peak RSS
of a run with a 1M-transition HalfCheetah buffer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER_SCRIPT = ROOT.parent / "shared" / "bench" / "peer_speed.py"


# ----------------------------------------------------------------------------------- measurements (child)
def _quiet_tf():
    sys.path.insert(0, str(ROOT))
    from keras_sac.startup import quiet_tensorflow_startup

    with quiet_tensorflow_startup():
        import tensorflow as tf  # noqa: F401
        import keras_sac.agent  # noqa: F401


def measure_train(env_id: str, steps: int) -> dict:
    """Env steps/s between step 2000 and `steps`, as peer_speed.py measures the peers."""
    _quiet_tf()
    from keras_sac import KerasSAC

    agent = KerasSAC(env_id, learning_starts=1000, batch_size=256, seed=0)
    marks = {}

    def clock(a):
        if a.num_timesteps in (2000, steps):
            marks[a.num_timesteps] = time.perf_counter()

    agent.learn(steps, callback=clock)
    return {"train_steps_per_s": (steps - 2000) / (marks[steps] - marks[2000])}


def measure_update(env_id: str, n: int = 300) -> dict:
    """Compiled train-step calls per second on one fixed 256-batch, and the FLOPs of one update."""
    _quiet_tf()
    import numpy as np
    import tensorflow as tf

    from keras_sac import KerasSAC

    agent = KerasSAC(env_id, batch_size=256, seed=0, buffer_size=10_000)
    agent.learn(600)  # fills the buffer with real transitions (random warm-up + some training)
    batch = [tf.constant(x) for x in agent.buffer.sample(256, np.random.default_rng(0))]
    for _ in range(20):
        agent.train_step(*batch)
    start = time.perf_counter()
    for _ in range(n):
        agent.train_step(*batch)
    agent.log_alpha.numpy()  # wait for the last step
    seconds = (time.perf_counter() - start) / n
    flops = update_flops(agent.spec.obs_dim, agent.spec.action_dim, agent.config.net_arch, agent.config.n_critics,
                         256)
    return {"updates_per_s": 1 / seconds, "update_ms": seconds * 1e3, "update_gflop": flops / 1e9,
            "update_gflops_per_s": flops / seconds / 1e9}


def update_flops(obs_dim: int, act_dim: int, net_arch, n_critics: int, batch: int) -> float:
    """Multiply-adds x2 of the dense layers in one SAC update (backward = 2x forward for trained nets).

    Critic phase: actor forward on s', n target critics forward, n critics forward+backward.
    Actor phase: actor forward+backward, n critics forward plus their input gradient (about one more
    forward; their weight gradients are not needed and are pruned from the graph).
    """
    def mlp(sizes):
        return 2 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))

    actor = mlp([obs_dim, *net_arch]) + 2 * mlp([net_arch[-1], act_dim])
    critic = mlp([obs_dim + act_dim, *net_arch, 1])
    per_sample = actor + n_critics * critic + 3 * n_critics * critic + 3 * actor + 2 * n_critics * critic
    return batch * per_sample


def measure_matmul_peak() -> dict:
    """fp32 GFLOP/s of 256x256x256 matmuls chained inside one graph (no per-op dispatch)."""
    _quiet_tf()
    import tensorflow as tf

    a = tf.random.normal((256, 256))
    b = tf.random.normal((256, 256)) * 0.06

    @tf.function
    def chain(x):
        for _ in range(200):
            x = tf.matmul(x, b)
        return x

    chain(a).numpy()
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        chain(a).numpy()
        runs.append(time.perf_counter() - start)
    return {"matmul_gflops_per_s": 200 * 2 * 256 ** 3 / min(runs) / 1e9}


def measure_latency(env_id: str, n: int = 2000) -> dict:
    """Median single-observation action latency: predict (both modes) and the SavedModel signature."""
    _quiet_tf()
    import tempfile

    import numpy as np
    import tensorflow as tf

    from keras_sac import KerasSAC

    agent = KerasSAC(env_id, seed=0, buffer_size=1000)
    obs = agent.env.reset(seed=0)[0].astype(np.float32)

    def median_us(fn):
        for _ in range(50):
            fn()
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
        return statistics.median(samples) * 1e6

    with tempfile.TemporaryDirectory() as tmp:
        policy = tf.saved_model.load(str(agent.export(Path(tmp) / "p")))
        serve = policy.signatures["serving_default"]
        batch = tf.constant(obs[None])
        saved = median_us(lambda: serve(observation=batch)["action"].numpy())
    return {"predict_deterministic_us": median_us(lambda: agent.predict(obs, deterministic=True)),
            "predict_stochastic_us": median_us(lambda: agent.predict(obs)),
            "savedmodel_signature_us": saved}


def measure_memory(steps: int = 6000) -> dict:
    """Bytes per stored HalfCheetah transition, and peak RSS after `steps` steps with a 1M buffer."""
    _quiet_tf()
    import resource

    from keras_sac import KerasSAC

    agent = KerasSAC("HalfCheetah-v5", learning_starts=1000, batch_size=256, seed=0, buffer_size=1_000_000)
    buffer = agent.buffer
    per_transition = sum(getattr(buffer, k).itemsize * getattr(buffer, k)[0].size
                         for k in ("obs", "actions", "rewards", "next_obs", "terminated"))
    agent.learn(steps)
    return {"buffer_bytes_per_transition": per_transition,
            "buffer_bytes_1m_allocated": per_transition * 1_000_000,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


CHILD = {"train": measure_train, "update": measure_update, "peak": measure_matmul_peak,
         "latency": measure_latency, "memory": measure_memory}


# ----------------------------------------------------------------------------------- orchestration (parent)
def run_child(*args) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *map(str, args)], capture_output=True, text=True,
                         timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_peer(python: str, lib: str, env_id: str, steps: int) -> float:
    out = subprocess.run([python, str(PEER_SCRIPT), lib, env_id, str(steps)], capture_output=True, text=True,
                         timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"peer {lib} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["train_steps_per_s"]


def machine_line() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import importlib.metadata as md

    return (f"{time.strftime('%Y-%m-%d')} | {platform.node()} | {os.cpu_count()} cores, {cpu} | Python "
            f"{platform.python_version()}, tensorflow {md.version('tensorflow')}, keras {md.version('keras')}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=5000, help="training steps per run (timed from step 2000)")
    p.add_argument("--envs", nargs="+", default=["HalfCheetah-v5", "InvertedPendulum-v5"])
    p.add_argument("--peers", metavar="PYTHON", help="python of a virtualenv with stable-baselines3 and sbx-rl")
    p.add_argument("--skip", nargs="*", default=[], choices=["update", "latency", "memory"])
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        name, *rest = args.child
        print(json.dumps(CHILD[name](*[int(x) if x.isdigit() else x for x in rest])))
        return 0
    if args.peers and not PEER_SCRIPT.is_file():
        p.error(f"--peers needs {PEER_SCRIPT}")

    print(f"machine: {machine_line()}")
    print(f"settings: SB3 defaults, batch 256, learning_starts 1000, one gradient step per env step, "
          f"{args.steps} steps timed from step 2000; medians of {args.repeats} fresh processes")
    for env_id in args.envs:
        ours, sb3, sbx = [], [], []
        for _ in range(args.repeats):
            ours.append(run_child("train", env_id, args.steps)["train_steps_per_s"])
            if args.peers:
                sb3.append(run_peer(args.peers, "sb3", env_id, args.steps))
                sbx.append(run_peer(args.peers, "sbx", env_id, args.steps))
        line = f"{env_id}: keras_sac {statistics.median(ours):.1f} env steps/s (runs {', '.join(f'{x:.1f}' for x in ours)})"
        if args.peers:
            line += (f" | SB3 {statistics.median(sb3):.1f} | SBX {statistics.median(sbx):.1f} | ratio vs SB3 "
                     f"{statistics.median(ours) / statistics.median(sb3):.2f}, vs SBX "
                     f"{statistics.median(ours) / statistics.median(sbx):.2f}")
        print(line, flush=True)
    if "update" not in args.skip:
        peak = statistics.median(run_child("peak")["matmul_gflops_per_s"] for _ in range(args.repeats))
        updates = [run_child("update", "HalfCheetah-v5") for _ in range(args.repeats)]
        rate = statistics.median(u["updates_per_s"] for u in updates)
        gflop, achieved = updates[0]["update_gflop"], statistics.median(u["update_gflops_per_s"] for u in updates)
        print(f"update only (HalfCheetah-v5, batch 256): {rate:.1f} updates/s; {gflop:.3f} GFLOP per update -> "
              f"{achieved:.1f} GFLOP/s = {achieved / peak:.0%} of the measured fp32 matmul peak "
              f"({peak:.1f} GFLOP/s, 256^3 matmuls in one graph); the peak allows {peak / gflop:.0f} updates/s")
    if "latency" not in args.skip:
        lat = [run_child("latency", "HalfCheetah-v5") for _ in range(args.repeats)]
        med = {k: statistics.median(x[k] for x in lat) for k in lat[0]}
        print(f"single-observation latency (HalfCheetah-v5): predict deterministic "
              f"{med['predict_deterministic_us']:.0f} us, stochastic {med['predict_stochastic_us']:.0f} us; "
              f"SavedModel serving_default {med['savedmodel_signature_us']:.0f} us")
    if "memory" not in args.skip:
        mem = run_child("memory", 6000)
        print(f"memory (HalfCheetah-v5, buffer_size 1M, 6000 steps): {mem['buffer_bytes_per_transition']} bytes per "
              f"transition ({mem['buffer_bytes_1m_allocated'] / 2**20:.0f} MiB if full; pages are touched as "
              f"filled); peak RSS {mem['peak_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
