"""The arithmetic of the benchmark scripts whose figures docs/benchmarks.md quotes."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import op_census  # noqa: E402


def test_critical_path_takes_the_longest_chain_and_counts_every_node_once():
    # a -> b -> d and a -> c -> d, with a control input (^) and an input from outside the graph (ignored)
    nodes = {
        "d": ("AddV2", ["b", "c"]),
        "b": ("MatMul", ["a", "outside"]),
        "c": ("Relu", ["^a"]),
        "a": ("Placeholder", []),
    }
    dag = {n: (op, [i.lstrip("^") for i in ins]) for n, (op, ins) in nodes.items()}
    path = op_census.critical_path(dag, {"a": 1.0, "b": 5.0, "c": 2.0, "d": 1.0}, per_node=0.5)
    assert path["us"] == pytest.approx(1.0 + 5.0 + 1.0 + 3 * 0.5)  # a, b, d
    assert path["nodes"] == 3
    assert path["matmul_us"] == pytest.approx(5.0)  # b only
    assert path["work_us"] == pytest.approx(9.0 + 4 * 0.5)


def test_critical_path_follows_the_other_branch_when_it_is_longer():
    dag = {"a": ("Const", []), "b": ("MatMul", ["a"]), "c": ("Relu", ["a"]), "d": ("AddV2", ["b", "c"])}
    path = op_census.critical_path(dag, {"b": 1.0, "c": 4.0}, per_node=0.5)
    assert (path["us"], path["nodes"], path["matmul_us"]) == (4.0 + 3 * 0.5, 3, 0.0)  # a, c, d


def test_dag_reads_data_and_control_inputs_by_node_name():
    from tensorflow.core.framework import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.node.add(name="x", op="Placeholder")
    graph.node.add(name="y", op="Split", input=["x"])
    graph.node.add(name="z", op="AddV2", input=["y:1", "^x"])
    assert op_census._dag(graph) == {"x": ("Placeholder", []), "y": ("Split", ["x"]), "z": ("AddV2", ["y", "x"])}


def test_list_schedule_runs_independent_chains_side_by_side_and_waits_for_inputs():
    # two chains of two nodes (a1 -> a2, b1 -> b2) joined by j; every node costs 1 + 0.5
    dag = {
        "a1": ("MatMul", []),
        "a2": ("MatMul", ["a1"]),
        "b1": ("MatMul", []),
        "b2": ("MatMul", ["b1"]),
        "j": ("AddV2", ["a2", "b2"]),
    }
    weight = dict.fromkeys(dag, 1.0)
    assert op_census.list_schedule(dag, weight, 0.5, processors=1) == pytest.approx(5 * 1.5)
    assert op_census.list_schedule(dag, weight, 0.5, processors=2) == pytest.approx(3 * 1.5)
    assert op_census.list_schedule(dag, weight, 0.5, processors=4) == pytest.approx(3 * 1.5)  # the path bounds it


def test_list_schedule_starts_the_longer_branch_first():
    # after s, three nodes are ready for two processors: the head of a 3-node chain and two single nodes. Taking
    # the chain's head first ends at 4; taking the two single nodes first would end at 5.
    dag = {
        "s": ("Const", []),
        "x": ("Relu", ["s"]),
        "y": ("Relu", ["s"]),
        "l1": ("MatMul", ["s"]),
        "l2": ("MatMul", ["l1"]),
        "l3": ("MatMul", ["l2"]),
    }
    assert op_census.list_schedule(dag, dict.fromkeys(dag, 1.0), 0.0, processors=2) == pytest.approx(4.0)
