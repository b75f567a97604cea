"""Ops in the default agent's compiled training phase, by type (issue #29's census, and an A/B check that a
change leaves the default update's graph alone).

    python benchmarks/op_census.py                       # HalfCheetah-v5 defaults, one gradient step
    python benchmarks/op_census.py --env Hopper-v5 --set critic_type=quantile --json census.json

Counts `node.op` over the concrete function's graph and every function in its library (the update's
tf.cond branches and loops are library functions). Two trees give the same counts and the same sorted
list of (op, data inputs' ops) when their default graphs are op for op the same.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def census(env_id: str, settings: dict) -> dict:
    from keras_sac.io.startup import quiet_tensorflow_startup

    with quiet_tensorflow_startup():
        from keras_sac import KerasSAC

    agent = KerasSAC(env_id, seed=0, **settings)
    graph = agent._compiled("_compiled_update_and_act").graph.as_graph_def()
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    counts = collections.Counter(n.op for n in nodes)
    return {
        "env": env_id,
        "settings": settings,
        "nodes": len(nodes),
        "functions": len(graph.library.function),
        "ops": dict(counts.most_common()),
    }


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
    p.add_argument("--json", type=Path, help="also write the census here")
    args = p.parse_args(argv)
    import yaml

    settings = {k: yaml.safe_load(v) for k, _, v in (s.partition("=") for s in args.settings)}
    result = census(args.env, settings)
    print(f"{result['nodes']} nodes in the graph and {result['functions']} library functions")
    for op, n in result["ops"].items():
        print(f"{n:6d}  {op}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
