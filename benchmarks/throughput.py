"""Throughput of keras_sac on this machine, optionally side by side with Stable-Baselines3 and SBX.

    python benchmarks/throughput.py                               # ours only
    python benchmarks/throughput.py --peers /path/to/peer-venv/bin/python --repeats 3
    python benchmarks/throughput.py --scaling                     # steps/s vs batch, width, critics, ...
    python benchmarks/throughput.py --vector --repeats 1          # steps/s vs n_envs, sync and async

Every figure is the median of `--repeats` fresh processes (no warm caches shared between repeats).
Training speed is measured exactly as benchmarks/peer_speed.py measures the peers: SB3 defaults
(256x256 networks, batch 256, one gradient step per env step) with learning_starts=1000, env steps per
second between step 2000 and the last step. With --peers, each repeat runs ours, then SB3, then SBX, so
the ratios compare runs made under the same machine load. Three settings are compared: the defaults (one
gradient step per env step) in float32, the same with our `precision="mixed_bfloat16"`, and
train_freq=8 / gradient_steps=8 (our fused training phase; the peers get the same two keywords).

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
PEER_SCRIPT = ROOT / "benchmarks" / "peer_speed.py"  # the peers' driver, kept beside this harness


# ----------------------------------------------------------------------------------- measurements (child)
def _quiet_tf():
    sys.path.insert(0, str(ROOT))
    from keras_sac.io.startup import quiet_tensorflow_startup

    # first_op=False (where the tree has it): the agent sizes TensorFlow's thread pools before it starts, as in
    # a user's process (keras_sac/core/threads.py); a tree from before that parameter starts TensorFlow here.
    try:
        quiet = quiet_tensorflow_startup(first_op=False)
    except TypeError:
        quiet = quiet_tensorflow_startup()
    with quiet:
        import tensorflow as tf  # noqa: F401

        import keras_sac.agent  # noqa: F401


def measure_train(env_id: str, steps: int, settings: str = "{}") -> dict:
    """Env steps/s between step 2000 and `steps`, as peer_speed.py measures the peers.

    settings: JSON of extra `KerasSAC` keywords (precision, train_freq, gradient_steps, net_arch, ...).
    """
    _quiet_tf()
    from keras_sac import KerasSAC

    agent = KerasSAC(env_id, **{"learning_starts": 1000, "batch_size": 256, "seed": 0, **json.loads(settings)})
    marks = {}

    def clock(a):
        if a.num_timesteps in (2000, steps):
            marks[a.num_timesteps] = time.perf_counter()

    agent.learn(steps, callback=clock)
    return {"train_steps_per_s": (steps - 2000) / (marks[steps] - marks[2000])}


def measure_update(env_id: str, precision: str = "float32", n: int = 300) -> dict:
    """Compiled training-phase calls per second (one update + the next action) on one fixed 256-batch, as
    `learn` makes them but without the env, sampling or Python loop; and the FLOPs of one update."""
    _quiet_tf()
    import numpy as np

    from keras_sac import KerasSAC
    from keras_sac.data.buffer import pack

    agent = KerasSAC(env_id, batch_size=256, seed=0, buffer_size=10_000, precision=precision)
    agent.learn(600)  # fills the buffer with real transitions (random warm-up + some training)
    # The call `learn` makes once per env step: one update plus the next action, packed minibatch in.
    minibatch = pack(agent.buffer.sample(256, np.random.default_rng(0)))[None]
    obs = agent.collector.obs
    phase = agent._compiled("_compiled_update_and_act")
    for _ in range(20):
        phase(minibatch, obs)
    start = time.perf_counter()
    for _ in range(n):
        phase(minibatch, obs)[1].numpy()
    seconds = (time.perf_counter() - start) / n
    flops = update_flops(agent.spec.obs_dim, agent.spec.action_dim, agent.config.net_arch, agent.config.n_critics, 256)
    return {
        "updates_per_s": 1 / seconds,
        "update_ms": seconds * 1e3,
        "update_gflop": flops / 1e9,
        "update_gflops_per_s": flops / seconds / 1e9,
    }


UTD_VARIANTS = {  # keras_sac settings matching benchmarks/peer_utd.py's SBX ones
    "sac": {},
    "droq": {"critic_dropout": 0.01, "critic_layer_norm": True},
    # DroQ as its paper's Algorithm 2 and our presets run it: the actor and temperature once per training call
    "droq-delayed": {"critic_dropout": 0.01, "critic_layer_norm": True, "policy_delay": "gradient_steps"},
    "crossq": {
        "critic_batch_renorm": True,
        "actor_batch_renorm": True,
        "target_update": "none",
        "policy_delay": 3,
        "adam_beta1": 0.5,
        "learning_rate": 1e-3,
        "actor_arch": [256, 256],
        "critic_arch": [512, 512],
    },
    # TQC as sb3-contrib and SBX default it (and benchmarks/screening/tqc.yaml): 2 critics x 25 quantiles, top 2 dropped
    "tqc": {"critic_type": "quantile", "n_quantiles": 25, "top_quantiles_to_drop_per_net": 2},
    # SimBa as benchmarks/screening/simba.yaml sizes it (actor one block of 128, critics two of 128, AdamW 0.01);
    # it also normalises observations with running statistics, which SBX's SimbaPolicy leaves to a wrapper
    "simba": {
        "architecture": "simba",
        "normalize_observations": True,
        "actor_arch": [128],
        "critic_arch": [128, 128],
        "weight_decay": 0.01,
    },
}


def utd_settings(variant: str, gradient_steps: int) -> dict:
    """UTD_VARIANTS[variant], a policy_delay of "gradient_steps" made that number."""
    return {k: gradient_steps if v == "gradient_steps" else v for k, v in UTD_VARIANTS[variant].items()}


def measure_utd(variant: str, gradient_steps: int, compile_mode: str = "auto") -> dict:
    """Gradient updates per second of the call `learn` makes after an env step at this update-to-data ratio:
    replay sampling of gradient_steps minibatches, the fused compiled phase, the next action."""
    _quiet_tf()
    from keras_sac import KerasSAC

    agent = KerasSAC(
        "HalfCheetah-v5",
        seed=0,
        batch_size=256,
        buffer_size=10_000,
        learning_starts=1000,
        gradient_steps=gradient_steps,
        compile_mode=compile_mode,
        **utd_settings(variant, gradient_steps),
    )
    agent.learn(1010)  # fills the buffer, compiles the phase (XLA: 3-15 s) and runs it 10 times
    calls = max(10, 200 // gradient_steps)
    for _ in range(3):
        agent._train()
    start = time.perf_counter()
    for _ in range(calls):
        agent._train()
    return {"updates_per_s": calls * gradient_steps / (time.perf_counter() - start)}


def run_utd(repeats: int, peers: str | None, rows: list[str] | None = None, graph: bool = True) -> None:
    """keras_sac as shipped (compile_mode auto), keras_sac in graph mode (the path before compile_mode; measured
    where auto picks XLA) and SBX, alternating, per variant and update-to-data ratio; medians of `repeats`
    fresh processes each. rows: "variant:k" strings, default all. graph=False skips the graph-mode column."""
    sys.path.insert(0, str(ROOT))
    from keras_sac.config.settings import SACConfig  # no TensorFlow in this parent process

    rows = (
        [(v, int(k)) for v, k in (r.split(":") for r in rows)]
        if rows
        else [(v, k) for v in UTD_VARIANTS for k in (1, 5, 10, 20)]
    )
    unknown = sorted({v for v, _ in rows} - set(UTD_VARIANTS))
    if unknown:
        raise SystemExit(f"--utd-rows: unknown variant(s) {unknown}; choose from {', '.join(UTD_VARIANTS)}")
    print(
        "update-to-data: gradient updates/s of one training call (replay sampling + k updates + next action), "
        f"HalfCheetah-v5, batch 256; medians of {repeats} fresh processes, alternating"
    )
    print("| variant | gradient_steps | keras_sac (auto) | keras_sac (graph) | SBX | auto / SBX | auto / graph |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    peer_script = Path(__file__).with_name("peer_utd.py")
    for variant, k in rows:
        xla = SACConfig(gradient_steps=k, **utd_settings(variant, k)).use_xla  # else auto is graph
        runs = {"auto": [], "graph": [], "SBX": []}
        for _ in range(repeats):
            runs["auto"].append(run_child("utd", variant, k, "auto")["updates_per_s"])
            if xla and graph:
                runs["graph"].append(run_child("utd", variant, k, "graph")["updates_per_s"])
            if peers:
                out = subprocess.run(
                    [peers, str(peer_script), variant, str(k)], capture_output=True, text=True, timeout=3600
                )
                if out.returncode != 0:
                    raise RuntimeError(f"peer_utd {variant} {k} failed:\n{out.stderr[-3000:]}")
                runs["SBX"].append(json.loads(out.stdout.strip().splitlines()[-1])["updates_per_s"])
        med = {name: statistics.median(v) if v else None for name, v in runs.items()}
        cells = [f"{med[n]:.1f} ({_runs(runs[n])})" if med[n] else "= auto" if n == "graph" else "-" for n in runs]
        ratios = [
            f"**{med['auto'] / med['SBX']:.2f}**" if med["SBX"] else "-",
            f"{med['auto'] / med['graph']:.2f}" if med["graph"] else "1",
        ]
        print(f"| {variant} | {k} | {' | '.join(cells)} | {' | '.join(ratios)} |", flush=True)


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
    """fp32 GFLOP/s of 256x256x256 matmuls in one graph: one chain (one core's worth in graph mode here)
    and two independent chains (what the executor can spread over two cores)."""
    _quiet_tf()
    import tensorflow as tf

    a = tf.random.normal((256, 256))
    b = tf.random.normal((256, 256)) * 0.06

    @tf.function
    def chains(x, y):
        for _ in range(100):
            x, y = tf.matmul(x, b), tf.matmul(y, b)
        return x, y

    @tf.function
    def chain(x):
        for _ in range(100):
            x = tf.matmul(x, b)
        return x

    def best(fn, *args):
        fn(*args)
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            tf.nest.map_structure(lambda t: t.numpy(), fn(*args))
            runs.append(time.perf_counter() - start)
        return min(runs)

    flop = 100 * 2 * 256**3
    return {
        "matmul_gflops_per_s": flop / best(chain, a) / 1e9,
        "matmul_two_chains_gflops_per_s": 2 * flop / best(chains, a, a + 1) / 1e9,
    }


def measure_latency(env_id: str, n: int = 2000) -> dict:
    """Median single-observation action latency: predict (both modes) and the SavedModel signature."""
    _quiet_tf()
    import tempfile

    import numpy as np
    import tensorflow as tf

    from keras_sac import KerasSAC

    agent = KerasSAC(env_id, seed=0, buffer_size=1000)
    obs = agent.env.reset(seed=0)[0].astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        policy = tf.saved_model.load(str(agent.export(Path(tmp) / "p")))
        serve = policy.signatures["serving_default"]
        batch = tf.constant(obs[None])
        saved = median_us(lambda: serve(observation=batch)["action"].numpy(), n)
    return {
        "predict_deterministic_us": median_us(lambda: agent.predict(obs, deterministic=True), n),
        "predict_stochastic_us": median_us(lambda: agent.predict(obs), n),
        "savedmodel_signature_us": saved,
    }


def median_us(fn, n: int, warmup: int = 50) -> float:
    """Median wall time of `fn()` over n calls, in microseconds, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def _rss_mb() -> dict:
    import resource

    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    kb = lambda key: int(status[key].split()[0]) / 1024  # noqa: E731
    return {
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "anon_rss_mb": kb("RssAnon"),
        "file_rss_mb": kb("RssFile"),
    }


def measure_memory(steps: int = 6000, optimize_memory_usage: str = "false") -> dict:
    """Bytes per stored HalfCheetah transition, and peak RSS after `steps` steps with a 1M buffer.

    Also the RSS of the imports alone: RssFile is shared-library pages (TensorFlow's .so files), RssAnon
    the process's own memory.
    """
    _quiet_tf()
    imports = _rss_mb()
    from keras_sac import KerasSAC

    agent = KerasSAC(
        "HalfCheetah-v5",
        learning_starts=1000,
        batch_size=256,
        seed=0,
        buffer_size=1_000_000,
        optimize_memory_usage=optimize_memory_usage == "true",
    )
    per_transition = agent.buffer.bytes_per_transition()
    agent.learn(steps)
    return {
        "buffer_bytes_per_transition": per_transition,
        "buffer_bytes_1m_allocated": per_transition * 1_000_000,
        **_rss_mb(),
        "import_rss_mb": imports["peak_rss_mb"],
        "import_anon_rss_mb": imports["anon_rss_mb"],
    }


def run_scaling(repeats: int) -> None:
    """HalfCheetah-v5 env steps/s as one setting moves away from the defaults (one run each unless repeats)."""
    base = {"batch_size": 256, "net_arch": [256, 256], "n_critics": 2, "train_freq": 1, "gradient_steps": 1}
    rows = [
        ("batch_size", [64, 128, 256, 512, 1024]),
        ("net_arch", [[64, 64], [128, 128], [256, 256], [512, 512], [1024, 1024]]),
        ("n_critics", [2, 3, 5, 10]),
        ("gradient_steps", [1, 2, 4, 8]),
    ]
    print("| setting | value | env steps/s | vs the default row of its group |")
    print("| --- | --- | --- | --- |")
    for key, values in rows:
        rates = {}
        for value in values:  # every group re-measures the default: its spread shows the noise of one run
            settings = {**base, key: value}
            if key == "gradient_steps":
                settings["train_freq"] = value  # as many updates per env step as the default
            slow = settings["net_arch"][0] >= 512 or settings["batch_size"] >= 1024 or settings["n_critics"] >= 5
            rates[str(value)] = statistics.median(
                run_child("train", "HalfCheetah-v5", 2600 if slow else 4000, json.dumps(settings))["train_steps_per_s"]
                for _ in range(repeats)
            )
        default = rates[str(base[key])]
        for value, rate in rates.items():
            shown = f"{value} (train_freq {value})" if key == "gradient_steps" else value
            print(f"| {key} | {shown} | {rate:.1f} | {rate / default:.2f} |", flush=True)


def run_vector(repeats: int, steps: int) -> None:
    """HalfCheetah-v5 env steps/s against n_envs, sync and async, at one gradient step per env step
    (gradient_steps = n_envs) and at one per vector step (gradient_steps 1)."""
    print(
        f"n_envs: HalfCheetah-v5 env steps/s, {steps} steps timed from step 2000, medians of {repeats}; "
        "UTD = gradient steps per env step"
    )
    print("| n_envs | vectorization | UTD 1 (gradient_steps = n_envs) | UTD 1/n_envs (gradient_steps 1) |")
    print("| --- | --- | --- | --- |")
    for n in (1, 2, 4, 8):
        for mode in ["sync"] if n == 1 else ["sync", "async"]:
            cells = []
            for k in (n, 1) if n > 1 else (1,):
                settings = json.dumps({"n_envs": n, "vectorization": mode, "gradient_steps": k})
                runs = [
                    run_child("train", "HalfCheetah-v5", steps, settings)["train_steps_per_s"] for _ in range(repeats)
                ]
                cells.append(f"{statistics.median(runs):.1f} (runs {_runs(runs)})")
            if n == 1:
                cells.append(cells[0])
            print(f"| {n} | {mode} | {cells[0]} | {cells[1]} |", flush=True)


CHILD = {
    "train": measure_train,
    "update": measure_update,
    "peak": measure_matmul_peak,
    "latency": measure_latency,
    "memory": measure_memory,
    "utd": measure_utd,
}


def serve_child(table: dict, argv: list[str]) -> int:
    """In a child: run table[argv[0]] with the rest as arguments (digits as ints); print its JSON result."""
    name, *rest = argv
    print(json.dumps(table[name](*[int(x) if x.isdigit() else x for x in rest])))
    return 0


# ----------------------------------------------------------------------------------- orchestration (parent)
def run_child(*args, script: str = __file__) -> dict:
    """Run `script --child *args` in a fresh process; its last stdout line is the JSON result."""
    out = subprocess.run(
        [sys.executable, script, "--child", *map(str, args)], capture_output=True, text=True, timeout=3600
    )
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# Runs the unmodified peer_speed.py with extra SAC keywords, by wrapping the SAC class it imports.
PEER_WITH_SETTINGS = """
import functools, json, runpy, sys
script, lib, settings = sys.argv[1], sys.argv[2], json.loads(sys.argv.pop(3))
module = __import__("stable_baselines3" if lib == "sb3" else "sbx")
module.SAC = functools.partial(module.SAC, **settings)
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""


def run_peer(python: str, lib: str, env_id: str, steps: int, settings: dict | None = None) -> float:
    command = [python, str(PEER_SCRIPT), lib, env_id, str(steps)]
    if settings:
        command = [python, "-c", PEER_WITH_SETTINGS, str(PEER_SCRIPT), lib, json.dumps(settings), env_id, str(steps)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"peer {lib} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["train_steps_per_s"]


def machine_line() -> str:
    """Date, host, cores and CPU -- with its family/model and widest vector ISA, which tell apart the kinds sold
    under one name ("AMD EPYC": Zen 3 with AVX2, Zen 4 with AVX-512) -- and the versions that matter."""
    import importlib.metadata as md

    from keras_sac.io.run_files import machine

    m = machine()
    kind = ", ".join(m[k] for k in ("cpu_id", "isa") if m.get(k))
    cpu = f"{m['cpu'] or 'unknown CPU'}" + (f" ({kind})" if kind else "")
    return (
        f"{time.strftime('%Y-%m-%d')} | {platform.node()} | {os.cpu_count()} cores, {cpu} | Python "
        f"{platform.python_version()}, tensorflow {md.version('tensorflow')}, keras {md.version('keras')}"
    )


def _runs(values) -> str:
    return ", ".join(f"{x:.1f}" for x in values)


def compare(
    label: str,
    env_id: str,
    steps: int,
    repeats: int,
    peers: str | None,
    ours: dict[str, dict],
    peer_settings: dict | None = None,
) -> dict[str, float]:
    """Alternate our variants and the peers `repeats` times; print and return the medians."""
    results = {name: [] for name in [*ours, *(["SB3", "SBX"] if peers else [])]}
    for _ in range(repeats):
        for name, settings in ours.items():
            results[name].append(run_child("train", env_id, steps, json.dumps(settings))["train_steps_per_s"])
        if peers:
            results["SB3"].append(run_peer(peers, "sb3", env_id, steps, peer_settings))
            results["SBX"].append(run_peer(peers, "sbx", env_id, steps, peer_settings))
    medians = {name: statistics.median(runs) for name, runs in results.items()}
    for name, runs in results.items():
        line = f"{label} {env_id}: {name} {medians[name]:.1f} env steps/s (runs {_runs(runs)})"
        if peers and name not in ("SB3", "SBX"):
            line += f" -> {medians[name] / medians['SB3']:.2f}x SB3, {medians[name] / medians['SBX']:.2f}x SBX"
        print(line, flush=True)
    return medians


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=5000, help="training steps per run (timed from step 2000)")
    p.add_argument(
        "--envs",
        nargs="*",
        default=["HalfCheetah-v5", "InvertedPendulum-v5"],
        help="envs for the training comparison (none: skip it)",
    )
    p.add_argument("--peers", metavar="PYTHON", help="python of a virtualenv with stable-baselines3 and sbx-rl")
    p.add_argument("--skip", nargs="*", default=[], choices=["bf16", "fused", "update", "latency", "memory"])
    p.add_argument("--scaling", action="store_true", help="print the scaling table instead")
    p.add_argument(
        "--utd",
        action="store_true",
        help="print updates/s at gradient_steps 1/5/10/20 for SAC, DroQ "
        "and CrossQ settings instead (with --peers: next to SBX's)",
    )
    p.add_argument(
        "--no-graph",
        action="store_true",
        help="--utd: skip the graph-mode column where auto picks XLA (halves the run)",
    )
    p.add_argument(
        "--utd-rows",
        nargs="+",
        metavar="VARIANT:K",
        help="with --utd: only these rows, e.g. droq:1 crossq:1 (default: every variant at 1/5/10/20)",
    )
    p.add_argument(
        "--vector",
        action="store_true",
        help="print HalfCheetah-v5 env steps/s against n_envs 1/2/4/8, sync and async, instead",
    )
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return serve_child(CHILD, args.child)
    if args.peers and not PEER_SCRIPT.is_file():
        p.error(f"--peers needs {PEER_SCRIPT}")

    print(f"machine: {machine_line()}")
    if args.scaling:
        run_scaling(args.repeats)
        return 0
    if args.utd:
        run_utd(args.repeats, args.peers, args.utd_rows, graph=not args.no_graph)
        return 0
    if args.vector:
        run_vector(args.repeats, args.steps)
        return 0
    print(
        f"settings: SB3 defaults, batch 256, learning_starts 1000, {args.steps} steps timed from step 2000; "
        f"medians of {args.repeats} fresh processes, ours and the peers alternating"
    )
    for env_id in args.envs:
        ours = {"keras_sac": {}}
        if "bf16" not in args.skip and env_id == "HalfCheetah-v5":
            ours["keras_sac bf16"] = {"precision": "mixed_bfloat16"}
        compare("defaults (1 gradient step per env step)", env_id, args.steps, args.repeats, args.peers, ours)
    if "fused" not in args.skip:
        fused = {"train_freq": 8, "gradient_steps": 8}
        compare(
            "train_freq 8, gradient_steps 8",
            "HalfCheetah-v5",
            args.steps,
            args.repeats,
            args.peers,
            {"keras_sac": fused},
            peer_settings=fused,
        )
    if "update" not in args.skip:
        peak = [run_child("peak") for _ in range(args.repeats)]
        one, two = (
            statistics.median(x[k] for x in peak) for k in ("matmul_gflops_per_s", "matmul_two_chains_gflops_per_s")
        )
        print(f"fp32 matmul peak, 256^3 in one graph: {one:.1f} GFLOP/s one chain, {two:.1f} two independent chains")
        for precision in ("float32", "mixed_bfloat16"):
            updates = [run_child("update", "HalfCheetah-v5", precision) for _ in range(args.repeats)]
            rate = statistics.median(u["updates_per_s"] for u in updates)
            gflop, achieved = updates[0]["update_gflop"], statistics.median(u["update_gflops_per_s"] for u in updates)
            print(
                f"update only, {precision} (HalfCheetah-v5, batch 256): {rate:.1f} updates/s "
                f"({1e3 / rate:.2f} ms); {gflop:.3f} GFLOP per update -> {achieved:.1f} GFLOP/s = "
                f"{achieved / two:.0%} of the two-chain fp32 peak (which allows {two / gflop:.0f} updates/s)"
            )
    if "latency" not in args.skip:
        lat = [run_child("latency", "HalfCheetah-v5") for _ in range(args.repeats)]
        med = {k: statistics.median(x[k] for x in lat) for k in lat[0]}
        print(
            f"single-observation latency (HalfCheetah-v5): predict deterministic "
            f"{med['predict_deterministic_us']:.0f} us, stochastic {med['predict_stochastic_us']:.0f} us; "
            f"SavedModel serving_default {med['savedmodel_signature_us']:.0f} us"
        )
    if "memory" not in args.skip:
        for compact in ("false", "true"):
            mem = run_child("memory", 6000, compact)
            print(
                f"memory (HalfCheetah-v5, buffer_size 1M, 6000 steps, optimize_memory_usage={compact}): "
                f"{mem['buffer_bytes_per_transition']} bytes per transition "
                f"({mem['buffer_bytes_1m_allocated'] / 2**20:.0f} MiB if full; pages are touched as filled); "
                f"peak RSS {mem['peak_rss_mb']:.0f} MB (anonymous {mem['anon_rss_mb']:.0f} MB, shared-library "
                f"pages {mem['file_rss_mb']:.0f} MB); imports alone {mem['import_rss_mb']:.0f} MB "
                f"(anonymous {mem['import_anon_rss_mb']:.0f} MB)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
