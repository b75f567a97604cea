"""Ops in the default agent's compiled training phase, by type and by part, and where its time goes (issue #29's
census; also an A/B check that a change leaves the default update's graph alone).

    python benchmarks/op_census.py                       # HalfCheetah-v5 defaults, one gradient step
    python benchmarks/op_census.py --time                # ... and time per part, one TensorFlow thread
    python benchmarks/op_census.py --wall                # ... or the call's wall time in the agent's thread layout
    python benchmarks/op_census.py --tree ../other-checkout --time --json before.json   # another commit's agent
    python benchmarks/op_census.py --env Hopper-v5 --set critic_type=quantile

Three counts of the phase (one update plus the next action):
- graph: `node.op` over the traced concrete function and every function in its library;
- executed: the same after Grappler's rewrites (constant folding, pruning, function inlining), which is the graph
  the executor runs once per call (placement-dependent fusions such as MatMul+BiasAdd+Relu -> _FusedMatMul
  happen later, so matmul counts there are upper bounds);
- with --time, per call: the ops TensorFlow's profiler traces (host_tracer_level 3, every op the executor
  marks as a kernel launch) and their time, summed per part, beside the call's wall time without the profiler.
  One TensorFlow thread, so op times add up to the call's; the profiled call's time they leave is the executor's
  own work: scheduling, the small ops it runs inline without a trace, and the call's entry and exit (all
  slowed by the profiler; the unprofiled wall time is printed beside).
- with --time, the floor on two cores: the executed graph as a DAG whose nodes weigh their traced time plus the
  executor's measured cost per node (untraced time / executed nodes), its work W and critical path P. No
  scheduler runs this graph on two cores in less than max(W / 2, P), and a greedy one (longest path first)
  shows what a plain list scheduler gets;
- with --wall, the call's wall time in the process's own thread layout, to set beside that floor (run it
  without --time and without TF_NUM_* set, and the agent applies its `auto` layout).

Parts: matmul (MatMul, _FusedMatMul, BatchMatMul, oneDNN's _Mkl*MatMul), optimizer (ops under an `*_adam` or
`*_adam_step` scope), checks (CheckNumerics and the `finite_check` scope), target update (`target_update` scope),
other (forward and backward element-wise ops, losses, sampling, reads, shapes, control).
"""

from __future__ import annotations

import argparse
import collections
import heapq
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("matmul", "optimizer", "checks", "target update", "other")


def is_matmul(op: str) -> bool:
    """MatMul, BatchMatMulV2/V3, Grappler's _FusedMatMul and, where TensorFlow uses oneDNN (the executed graph on
    x86), its _MklMatMul and _MklNativeFusedMatMul."""
    return "MatMul" in op


def part(name: str, op: str) -> str:
    if is_matmul(op):
        return "matmul"
    if re.search(r"_adam(_step)?(_\d+)?/", name):
        return "optimizer"
    if op == "CheckNumerics" or "finite_check" in name:
        return "checks"
    if "target_update" in name:
        return "target update"
    return "other"


def _agent(env_id: str, settings: dict):
    from keras_sac.io.startup import quiet_tensorflow_startup

    with quiet_tensorflow_startup(first_op=False):  # the agent starts TensorFlow, its thread pools sized first
        from keras_sac import KerasSAC

    agent = KerasSAC(env_id, seed=0, batch_size=256, buffer_size=10_000, learning_starts=300, **settings)
    agent.learn(400)  # real transitions in the buffer, the phase traced and run
    return agent


def _count(nodes) -> dict:
    by_op = collections.Counter(n.op for n in nodes)
    by_part = collections.Counter(part(n.name, n.op) for n in nodes)
    return {"nodes": len(nodes), "parts": {p: by_part[p] for p in PARTS}, "ops": dict(by_op.most_common())}


def graph_census(function) -> dict:
    graph = function.graph.as_graph_def()
    return _count(list(graph.node) + [n for f in graph.library.function for n in f.node_def])


def executed_graph(function):
    """The phase's GraphDef after Grappler's default passes, kept alive by its outputs and stateful ops."""
    from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
    from tensorflow.python.grappler import tf_optimizer

    meta = meta_graph_pb2.MetaGraphDef()
    meta.graph_def.CopyFrom(function.graph.as_graph_def())
    fetch = meta.collection_def["train_op"].node_list.value
    fetch.extend(t.name for t in function.graph.outputs)
    fetch.extend(op.name for op in function.graph.get_operations() if op._is_stateful)
    return tf_optimizer.OptimizeGraph(config_pb2.ConfigProto(), meta)


def executed_census(function) -> dict:
    optimized = executed_graph(function)
    return _count(list(optimized.node) + [n for f in optimized.library.function for n in f.node_def])


def critical_path(nodes: dict[str, tuple[str, list[str]]], weight: dict[str, float], per_node: float) -> dict:
    """Longest path through a DAG {name: (op, input names)} where node n costs weight.get(n, 0) + per_node;
    inputs outside `nodes` are ignored. Returns its cost, node count, matmul cost, and the total work."""
    finish: dict[str, float] = {}
    came_from: dict[str, str | None] = {}
    for name in _topological(nodes):
        inputs = [i for i in nodes[name][1] if i in nodes]
        before = max(inputs, key=finish.__getitem__, default=None)
        came_from[name] = before
        finish[name] = weight.get(name, 0.0) + per_node + (finish[before] if before else 0.0)
    end = max(finish, key=finish.__getitem__)
    path = [end]
    while came_from[path[-1]] is not None:
        path.append(came_from[path[-1]])  # type: ignore[arg-type]
    return {
        "us": finish[end],
        "nodes": len(path),
        "matmul_us": sum(weight.get(n, 0.0) for n in path if is_matmul(nodes[n][0])),
        "work_us": sum(weight.get(n, 0.0) for n in nodes) + per_node * len(nodes),
    }


def list_schedule(
    nodes: dict[str, tuple[str, list[str]]], weight: dict[str, float], per_node: float, processors: int
) -> float:
    """Makespan of a greedy schedule of the DAG on `processors` identical processors: whenever one is idle it
    takes the ready node with the longest path to the end (a good schedule, not always the best)."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    waiting = dict.fromkeys(nodes, 0)
    for name, (_, inputs) in nodes.items():
        for i in set(inputs) & nodes.keys():
            succ[i].append(name)
            waiting[name] += 1
    cost = {n: weight.get(n, 0.0) + per_node for n in nodes}
    to_end: dict[str, float] = {}
    for name in reversed(_topological(nodes)):
        to_end[name] = cost[name] + max((to_end[s] for s in succ[name]), default=0.0)
    ready = [(-to_end[n], n) for n in nodes if waiting[n] == 0]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    now = 0.0
    while ready or running:
        while ready and len(running) < processors:
            _, name = heapq.heappop(ready)
            heapq.heappush(running, (now + cost[name], name))
        now, name = heapq.heappop(running)
        for s in succ[name]:
            waiting[s] -= 1
            if waiting[s] == 0:
                heapq.heappush(ready, (-to_end[s], s))
    return now


def _topological(nodes: dict[str, tuple[str, list[str]]]) -> list[str]:
    order: list[str] = []
    done: set[str] = set()
    for root in nodes:
        stack = [(root, iter(nodes[root][1]))]
        while stack:
            name, inputs = stack[-1]
            nxt = next((i for i in inputs if i in nodes and i not in done), None)
            if nxt is None:
                stack.pop()
                if name not in done:
                    done.add(name)
                    order.append(name)
            elif all(nxt != s[0] for s in stack):  # a cycle would be a broken graph; skip the back edge
                stack.append((nxt, iter(nodes[nxt][1])))
    return order


def _dag(graph_def) -> dict[str, tuple[str, list[str]]]:
    """{node name: (op, names of its data and control inputs)} of a flat GraphDef."""
    return {n.name: (n.op, [i.lstrip("^").split(":")[0] for i in n.input]) for n in graph_def.node}


def phase_inputs(agent, plan: str | None = None):
    """The training phase `learn` calls once per env step (gradient_steps updates + the next action) and one fixed
    packed set of minibatches (gradient_steps, batch_size, width) and observation for it. `plan` picks one of
    the agent's phase programs (SACUpdate.plan); default the one a fresh agent calls first."""
    import numpy as np

    from keras_sac.data.buffer import pack

    cfg = agent.config
    phase = agent._compiled(plan or agent._update.plan(0))
    sample = agent.buffer.sample(cfg.gradient_steps * cfg.batch_size, np.random.default_rng(0))
    return phase, pack(sample).reshape(cfg.gradient_steps, cfg.batch_size, -1), agent.collector.obs


def time_calls(phase, minibatch, obs, calls: int, warmup: int = 0) -> list[float]:
    """Seconds per call, each waited for, after `warmup` untimed calls."""
    for _ in range(warmup):
        phase(minibatch, obs)
    walls = []
    for _ in range(calls):
        start = time.perf_counter()
        phase(minibatch, obs)[1].numpy()
        walls.append(time.perf_counter() - start)
    return walls


def wall_per_call(agent, calls: int) -> list[float]:
    """Seconds per call of the training phase on one fixed minibatch, after 30 warm-up calls."""
    return time_calls(*phase_inputs(agent), calls, warmup=30)


def profiled_calls(phase, minibatch, obs, calls: int):
    """(seconds per call, the profiler's XSpace) of `calls` calls under TensorFlow's profiler, every op traced."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as logdir:
        options = tf.profiler.experimental.ProfilerOptions(host_tracer_level=3, python_tracer_level=0)
        tf.profiler.experimental.start(logdir, options=options)
        profiled = time_calls(phase, minibatch, obs, calls)
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    return profiled, space


def timed_census(agent, calls: int) -> dict:
    phase, minibatch, obs = phase_inputs(agent)
    walls = time_calls(phase, minibatch, obs, calls, warmup=30)
    profiled, space = profiled_calls(phase, minibatch, obs, calls)
    count: collections.Counter = collections.Counter()
    micros: collections.Counter = collections.Counter()
    op_micros: collections.Counter = collections.Counter()
    node_micros: collections.Counter = collections.Counter()
    for plane in space.planes:
        names = plane.event_metadata
        for line in plane.lines:
            for event in line.events:
                label = names[event.metadata_id].name  # "node name:OpType" for an op
                node, _, op = label.rpartition(":")
                if not node or "::" in label or not op.isidentifier():
                    continue
                count[part(node, op)] += 1
                micros[part(node, op)] += event.duration_ps / 1e6
                op_micros[op] += event.duration_ps / 1e6
                node_micros[node] += event.duration_ps / 1e6
    profiled_us = sum(profiled) / calls * 1e6  # a mean, as the parts' times are sums over the calls
    traced_us = sum(micros.values()) / calls
    dag = _dag(executed_graph(phase))
    per_node = max(0.0, profiled_us - traced_us) / len(dag)
    weights = {n: us / calls for n, us in node_micros.items()}
    path = critical_path(dag, weights, per_node)
    path["two_processor_schedule_us"] = list_schedule(dag, weights, per_node, 2)
    return {
        "calls": calls,
        "wall_us": statistics.median(walls) * 1e6,
        "profiled_wall_us": profiled_us,
        "traced_ops_per_call": sum(count.values()) / calls,
        "parts": {p: {"ops": count[p] / calls, "us": micros[p] / calls} for p in PARTS},
        "untraced_us": profiled_us - traced_us,
        "top_ops_us": {op: us / calls for op, us in op_micros.most_common(12)},
        "critical_path": {**path, "per_node_us": per_node, "two_core_floor_us": max(path["work_us"] / 2, path["us"])},
    }


def census(env_id: str, settings: dict, time_it: bool = False, calls: int = 200, wall: bool = False) -> dict:
    agent = _agent(env_id, settings)
    phase = agent._compiled("_compiled_update_and_act")
    result = {"env": env_id, "settings": settings, "graph": graph_census(phase), "executed": executed_census(phase)}
    if time_it:
        result["time"] = timed_census(agent, calls)
    if wall:
        import tensorflow as tf

        threads = (
            tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads(),
        )
        result["wall"] = {
            "threads": threads,
            "calls": calls,
            "us": statistics.median(wall_per_call(agent, calls)) * 1e6,
        }
    return result


def report(result: dict) -> str:
    g, e = result["graph"], result["executed"]
    lines = [f"{g['nodes']} nodes in the graph, {e['nodes']} after Grappler", "", "part | graph | executed"]
    lines += [f"{p} | {g['parts'][p]} | {e['parts'][p]}" for p in PARTS]
    if "time" in result:
        t = result["time"]
        wall = t["profiled_wall_us"]
        lines += ["", f"wall {t['wall_us']:.0f} us per call (median of {t['calls']}), one TensorFlow thread;"]
        lines += [f"profiled: {wall:.0f} us per call (mean), of which", "part | traced ops | us | share"]
        lines += [
            f"{p} | {t['parts'][p]['ops']:.1f} | {t['parts'][p]['us']:.0f} | {t['parts'][p]['us'] / wall:.1%}"
            for p in PARTS
        ]
        lines.append(f"untraced (executor) | | {t['untraced_us']:.0f} | {t['untraced_us'] / wall:.1%}")
        cp = t["critical_path"]
        lines += [
            "",
            f"as a DAG (traced time per node + {cp['per_node_us']:.1f} us of executor per node): work "
            f"{cp['work_us']:.0f} us, critical path {cp['us']:.0f} us ({cp['nodes']} nodes, {cp['matmul_us']:.0f} us "
            f"of matmuls); two-core floor max(work / 2, path) = {cp['two_core_floor_us']:.0f} us; a greedy "
            f"longest-path-first schedule on two processors: {cp['two_processor_schedule_us']:.0f} us (profiled times)",
        ]
    if "wall" in result:
        intra, inter = result["wall"]["threads"]
        lines.append(
            f"wall {result['wall']['us']:.0f} us per call (median of {result['wall']['calls']}), threads intra "
            f"{intra} / inter {inter} (0: TensorFlow's default)"
        )
    lines += ["", "executed ops by type:"] + [f"{n:6d}  {op}" for op, n in list(e["ops"].items())[:25]]
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a KerasSAC setting (YAML value), e.g. gradient_steps=5",
    )
    p.add_argument("--time", action="store_true", help="also time the parts (one TensorFlow thread)")
    p.add_argument("--wall", action="store_true", help="time the call in this process's thread layout (no profiler)")
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose keras_sac to count (default: this)")
    p.add_argument("--json", type=Path, help="also write the census here")
    args = p.parse_args(argv)
    import yaml

    if args.time:  # before TensorFlow starts: per-op times then add up to the call's
        os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    sys.path.insert(0, str(args.tree.resolve()))
    settings = {k: yaml.safe_load(v) for k, _, v in (s.partition("=") for s in args.settings)}
    if args.time and args.wall:
        p.error("--wall times the thread layout --time replaces with one thread: run them separately")
    result = census(args.env, settings, args.time, args.calls, args.wall)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
