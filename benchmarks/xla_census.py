"""Where an XLA-compiled training phase's time goes, per XLA thunk (issue #29's census for the rows `auto`
compiles with XLA: CrossQ, DroQ, REDQ, TQC, several gradient steps; op_census.py counts the graph-mode ones).

    python benchmarks/xla_census.py --set critic_type=quantile          # TQC, one gradient step
    python benchmarks/xla_census.py --preset crossq                     # throughput.py's UTD row settings
    python benchmarks/xla_census.py --preset sac --set gradient_steps=5 --json sac5.json

Under XLA the phase is one `XlaLaunch` op, so TensorFlow's op tracer sees nothing inside it. XLA's CPU runtime
runs the compiled program as thunks (one per kernel: a dot, a fusion of element-wise ops, a copy, a reduction).
With `--xla_cpu_enable_xprof_traceme` each thunk is a profiler event named after its HLO instruction, and the
optimised HLO (`--xla_dump_to`) names the TensorFlow ops each instruction computes, so each thunk goes into
op_census.py's parts (matmul, optimizer, checks, target update, other). "other" also holds the copies XLA adds
(no TensorFlow op); its largest TensorFlow scopes are listed. A conditional or loop is not counted itself: its
event spans its body's thunks, which are.

One TensorFlow thread, as op_census.py --time: thunks run one at a time, so their times add up to the call's,
and the rest of the profiled call is the runtime's own work (dispatch, the call's entry and exit). On two
cores XLA runs independent thunks side by side and splits large dots; that wall time is throughput.py's.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from op_census import PARTS, ROOT, _agent, part, phase_inputs, profiled_calls, time_calls  # noqa: E402

INSTRUCTION = re.compile(r"\s*(?:ROOT )?%([\w.\-]+) = .*? ([\w\-]+)\(")
COMPUTATION = re.compile(r"^(?:ENTRY )?%([\w.\-]+) .*\{$")
# SACUpdate.plan's answers (keras_sac.core.update.PLANS, not imported here: TensorFlow must start after XLA_FLAGS is set)
PLANS = ("every", "actor", "critic", "groups", "cond")
CONTROL = {"conditional", "while", "call"}  # their events span the thunks of their bodies: not added again


def instructions(hlo_text: str) -> dict[str, tuple[str, str, list[str]]]:
    """HLO instruction name -> (opcode, TensorFlow op type, the TensorFlow op names it computes) from an
    optimised HLO dump. A fusion's op names are those of every instruction fused into it (XLA names the fusion
    after one of them, which may be a `select` its conditional became); none where XLA made the instruction."""
    found: dict[str, tuple[str, str, str, str]] = {}
    bodies: dict[str, list[str]] = collections.defaultdict(list)
    computation = ""
    for line in hlo_text.splitlines():
        if m := COMPUTATION.match(line):
            computation = m.group(1)
            continue
        if m := INSTRUCTION.match(line):
            op_type = re.search(r'op_type="([^"]+)"', line)
            op_name = re.search(r'op_name="([^"]+)"', line)
            calls = re.search(r"calls=%([\w.\-]+)", line)
            name = op_name.group(1) if op_name else ""
            found[m.group(1)] = (m.group(2), op_type.group(1) if op_type else "", name, calls.group(1) if calls else "")
            if name:
                bodies[computation].append(f"{name}:{op_type.group(1) if op_type else m.group(2)}")
    return {
        k: (
            opcode,
            op_type,
            bodies.get(calls, []) if opcode == "fusion" else [f"{name}:{op_type or opcode}"] * bool(name),
        )
        for k, (opcode, op_type, name, calls) in found.items()
    }


def thunk_part(opcode: str, ops: list[str], thunk: str) -> str:
    """op_census.py's part of a thunk: a matmul if it computes a dot (alone, or fused with its element-wise
    neighbours); else the first of optimizer, checks, target update that any of its TensorFlow ops is in."""
    if opcode == "dot" or re.search(r"(^|_)dot(_|\.|$)", thunk):
        return "matmul"
    found = {part(name + "/", op) for name, _, op in (o.rpartition(":") for o in ops)}
    if "matmul" in found:
        return "matmul"
    return next((p for p in PARTS[1:-1] if p in found), "other")


def scope(ops: list[str]) -> str:
    """A thunk's TensorFlow scope, two levels deep without TensorFlow's _1, _2 suffixes (the first of its ops'),
    or "(XLA's own: copies)" where it computes no TensorFlow op."""
    if not ops:
        return "(XLA's own: copies)"
    return "/".join(re.sub(r"_\d+$", "", s) for s in ops[0].rpartition(":")[0].split("/")[:2])


def phase_module(dump: Path, function: str) -> str:
    """The optimised HLO of the training phase: the dumped module of the traced function named `function`
    (`__inference__update_and_act_<id>`; XLA names its module `a_inference__update_and_act_<id>__...`)."""
    files = list(dump.glob(f"*.a{function[1:]}__*cpu_after_optimizations.txt"))
    if not files:
        raise SystemExit(f"no optimised HLO of {function} in {dump}: was it compiled with XLA?")
    return files[0].read_text()


def thunk_times(space, names: dict, calls: int) -> tuple[collections.Counter, collections.Counter]:
    """(µs per call, thunks per call) by thunk name, summed over threads, from a profiler XSpace."""
    micros: collections.Counter = collections.Counter()
    count: collections.Counter = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if name in names:
                    micros[name] += event.duration_ps / 1e6 / calls
                    count[name] += 1 / calls
    return micros, count


def census(env_id: str, settings: dict, calls: int, dump: Path, plan: str | None = None) -> dict:
    agent = _agent(env_id, settings)
    cfg = agent.config
    if not cfg.use_xla:
        raise SystemExit("this agent's phase runs as a graph, not XLA: use op_census.py, or --set compile_mode=xla")
    phase, minibatch, obs = phase_inputs(agent, plan)
    walls = time_calls(phase, minibatch, obs, calls, warmup=30)
    names = instructions(phase_module(dump, phase.name.decode() if isinstance(phase.name, bytes) else phase.name))
    profiled, space = profiled_calls(phase, minibatch, obs, calls)
    micros, count = thunk_times(space, names, calls)
    parts_us: collections.Counter = collections.Counter()
    parts_n: collections.Counter = collections.Counter()
    other: collections.Counter = collections.Counter()
    for thunk, us in micros.items():
        opcode, _, ops = names[thunk]
        if opcode in CONTROL:
            continue
        p = thunk_part(opcode, ops, thunk)
        parts_us[p] += us
        parts_n[p] += count[thunk]
        if p == "other":
            other[scope(ops)] += us
    top = [
        {"thunk": t, "us": us, "per_call": count[t], "op": (names[t][2] or [names[t][0]])[0].rpartition(":")[0]}
        for t, us in micros.most_common(20)
        if names[t][0] not in CONTROL
    ][:12]
    return {
        "env": env_id,
        "settings": settings,
        "gradient_steps": cfg.gradient_steps,
        "plan": plan or agent._update.plan(0),
        "calls": calls,
        "wall_us": statistics.median(walls) * 1e6,
        "profiled_wall_us": sum(profiled) / calls * 1e6,
        "hlo_instructions": len(names),
        "thunks_per_call": sum(n for t, n in count.items() if names[t][0] not in CONTROL),
        "thunk_us": sum(us for t, us in micros.items() if names[t][0] not in CONTROL),
        "parts": {p: {"thunks": parts_n[p], "us": parts_us[p]} for p in PARTS},
        "other_scopes_us": dict(other.most_common(10)),
        "top_thunks": top,
    }


def report(r: dict) -> str:
    busy, profiled = r["thunk_us"], r["profiled_wall_us"]
    lines = [
        f"{r['env']} {r['settings']}, the {r['plan']!r} phase: {r['hlo_instructions']} instructions in the optimised HLO, "
        f"{r['thunks_per_call']:.0f} thunks run per call",
        f"wall {r['wall_us']:.0f} us per call (median of {r['calls']}, unprofiled), one TensorFlow thread;",
        f"profiled: {profiled:.0f} us per call (mean), of which",
        "part | thunks per call | us | share",
    ]
    lines += [f"{p} | {v['thunks']:.1f} | {v['us']:.0f} | {v['us'] / profiled:.1%}" for p, v in r["parts"].items()]
    lines.append(f"untraced (runtime) | | {profiled - busy:.0f} | {(profiled - busy) / profiled:.1%}")
    lines += ["", "other, by TensorFlow scope (us per call):"]
    lines += [f"{us:8.0f}  {name}" for name, us in r["other_scopes_us"].items()]
    lines += ["", "costliest thunks (us per call, runs per call, TensorFlow op):"]
    lines += [f"{t['us']:8.0f}  {t['per_call']:4.1f}  {t['thunk']}  {t['op']}" for t in r["top_thunks"]]
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--preset", help="start from throughput.py's UTD_VARIANTS[PRESET] (sac, droq, crossq, tqc, simba)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--calls", type=int, default=100)
    p.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose keras_sac to measure (default: this)")
    p.add_argument(
        "--plan",
        choices=PLANS,
        help="the training phase to census, by its pattern of actor updates (SACUpdate.plan; default: the "
        "agent's first, 'actor' where policy_delay > 1 and gradient_steps 1, whose other program is 'critic')",
    )
    p.add_argument("--json", type=Path, help="also write the census here")
    args = p.parse_args(argv)
    import yaml

    sys.path.insert(0, str(args.tree.resolve()))
    settings = {k: yaml.safe_load(v) for k, _, v in (s.partition("=") for s in args.settings)}
    if args.preset:
        from throughput import UTD_VARIANTS, utd_settings

        if args.preset not in UTD_VARIANTS:
            p.error(f"--preset {args.preset!r}: choose one of {', '.join(UTD_VARIANTS)}")
        settings = {**utd_settings(args.preset, settings.get("gradient_steps", 1)), **settings}
    with tempfile.TemporaryDirectory() as dump:
        # before TensorFlow starts: XLA reads its flags once
        flags = f"--xla_cpu_enable_xprof_traceme=true --xla_dump_to={dump} --xla_dump_hlo_as_text"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
        os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = "1"
        result = census(args.env, settings, args.calls, Path(dump), args.plan)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
