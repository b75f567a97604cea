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


HLO = "\n".join(  # the form of XLA's optimised HLO dump, cut down
    [
        "HloModule a_inference__update_and_act_7, entry_computation_layout={(f32[4,4]{1,0})->f32[4]{0}}",
        "",
        "%fused_computation.3 (param_0.1: f32[4], param_1.2: f32[4]) -> f32[4] {",
        "  %param_0.1 = f32[4]{0} parameter(0)",
        "  %param_1.2 = f32[4]{0} parameter(1)",
        "  %multiply.5 = f32[4]{0} multiply(%param_0.1, %param_1.2), "
        'metadata={op_type="ResourceApplyAdam" op_name="cond_3/cond/critic_adam_step/ResourceApplyAdam"}',
        "  ROOT %select.7 = f32[4]{0} select(%param_1.2, %multiply.5, "
        '%param_0.1), metadata={op_type="If" op_name="cond_3"}',
        "}",
        "",
        "%fused_computation.4 (param_0.2: f32[4]) -> f32[4] {",
        "  %param_0.2 = f32[4]{0} parameter(0)",
        "  ROOT %multiply.8 = f32[4]{0} multiply(%param_0.2, "
        '%param_0.2), metadata={op_type="Mul" op_name="critics_1/q_0_1/renorm_1_1/Mul_5"}',
        "}",
        "",
        "ENTRY %main.9 (arg0.1: f32[4,4], arg1.1: f32[4,4]) -> f32[4] {",
        '  %arg0.1 = f32[4,4]{1,0} parameter(0), metadata={op_name="XLA_Args"}',
        "  %MatMul.96 = f32[4,4]{1,0} dot(%arg0.1, %arg1.1), "
        "lhs_contracting_dims={1}, rhs_contracting_dims={0}, "
        'metadata={op_type="MatMul" op_name="critics_1/q_0_1/hidden_1_1/MatMul"}',
        "  %maximum_dot_fusion.2 = f32[4]{0} fusion(%MatMul.96), kind=kLoop, calls=%fused_computation.4",
        "  %copy.3 = f32[4]{0} copy(%maximum_dot_fusion.2)",
        "  %multiply_select_fusion = f32[4]{0} fusion(%copy.3, "
        '%copy.3), kind=kLoop, calls=%fused_computation.3, metadata={op_type="If" op_name="cond_3"}',
        "  ROOT %cond_1.73 = (f32[4]{0}, f32[]) conditional(%p, "
        "%multiply_select_fusion), true_computation=%t, false_computation=%f",
        "}",
        "",
    ]
)


def test_xla_census_finds_each_thunks_tensorflow_ops_and_part():
    import xla_census

    names = xla_census.instructions(HLO)
    assert names["MatMul.96"] == ("dot", "MatMul", ["critics_1/q_0_1/hidden_1_1/MatMul:MatMul"])
    # a fusion computes the ops of its body: here Adam's, though XLA named it after the select its cond became
    opcode, _, ops = names["multiply_select_fusion"]
    assert ops == ["cond_3/cond/critic_adam_step/ResourceApplyAdam:ResourceApplyAdam", "cond_3:If"]
    assert xla_census.thunk_part(opcode, ops, "multiply_select_fusion") == "optimizer"
    assert xla_census.thunk_part("dot", names["MatMul.96"][2], "MatMul.96") == "matmul"
    assert xla_census.thunk_part("fusion", names["maximum_dot_fusion.2"][2], "maximum_dot_fusion.2") == "matmul"
    assert names["copy.3"] == ("copy", "", [])
    assert xla_census.thunk_part("copy", [], "copy.3") == "other"
    assert xla_census.scope([]) == "(XLA's own: copies)"
    assert xla_census.scope(names["maximum_dot_fusion.2"][2]) == "critics/q_0"
    assert names["cond_1.73"][0] in xla_census.CONTROL  # its event spans its body's thunks: not added again


def test_xla_census_sums_each_thunks_events_per_call_and_ignores_other_events():
    import xla_census
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    plane = space.planes.add()
    for i, name in enumerate(["MatMul.96", "ThunkExecutor::Execute"]):
        plane.event_metadata[i + 1].name = name
    for thread in range(2):  # one MatMul.96 per call on each of two threads, 2 us and 4 us; the executor's span
        line = plane.lines.add()
        line.events.add(metadata_id=1, duration_ps=(2 + 2 * thread) * 10**6)
        line.events.add(metadata_id=1, duration_ps=(2 + 2 * thread) * 10**6)
        line.events.add(metadata_id=2, duration_ps=10**9)
    micros, count = xla_census.thunk_times(space, xla_census.instructions(HLO), calls=2)
    assert micros == {"MatMul.96": pytest.approx(6.0)} and count == {"MatMul.96": pytest.approx(2.0)}


@pytest.mark.parametrize("op", ["MatMul", "_FusedMatMul", "BatchMatMulV3", "_MklMatMul", "_MklNativeFusedMatMul"])
def test_every_matmul_kernel_counts_as_a_matmul_including_onednns(op):
    # the profiled ops of the executed graph on x86 are oneDNN's (_Mkl*): missing them left --time's matmul row at 0
    assert op_census.part("critics_1/q_0_1/hidden_1_1/MatMul", op) == "matmul"
    assert op_census.part("actor_adam_step/Sub", "Sub") == "optimizer"


def test_xla_census_reads_the_module_of_the_phase_it_times_and_knows_every_plan(tmp_path):
    import xla_census

    from keras_sac.core.update import PLANS

    assert xla_census.PLANS == PLANS  # a copy: the census sets XLA_FLAGS before TensorFlow starts
    # two phase programs compiled (CrossQ's actor and critic-only phases): the census must read the one it times
    for n, body in [(7, "actor"), (12, "critic")]:
        name = f"module_00{n}.a_inference__update_and_act_{n}__XlaMustCompile_true.cpu_after_optimizations.txt"
        (tmp_path / name).write_text(body)
    (tmp_path / "module_0099.a_inference__update_and_act_120__.cpu_after_optimizations.txt").write_text("other")
    assert xla_census.phase_module(tmp_path, "__inference__update_and_act_12") == "critic"
    assert xla_census.phase_module(tmp_path, "__inference__update_and_act_7") == "actor"
    with pytest.raises(SystemExit, match="no optimised HLO of __inference__update_and_act_8"):
        xla_census.phase_module(tmp_path, "__inference__update_and_act_8")


def test_ensemble_layouts_compute_the_same_critics_and_count_entry_instructions():
    import ensemble_layout
    import numpy as np
    import tensorflow as tf

    # the stacked layout given the separate critics' weights computes the same Q-values, so the benchmark
    # compares two layouts of one computation
    separate, forward_separate = ensemble_layout.build("separate", n=3, width=8, in_dim=5)
    stacked, forward_stacked = ensemble_layout.build("stacked", n=3, width=8, in_dim=5, seed=1)
    per_critic = [separate[i : i + 6] for i in range(0, 18, 6)]  # (kernel, bias) x 3 layers, per critic
    for layer, (kernel, bias) in enumerate(zip(stacked[::2], stacked[1::2], strict=True)):
        kernel.assign(np.stack([c[2 * layer].numpy() for c in per_critic]))
        bias.assign(np.stack([c[2 * layer + 1].numpy() for c in per_critic])[:, None, :])
    x = tf.constant(np.random.default_rng(0).standard_normal((16, 5)).astype(np.float32))
    np.testing.assert_allclose(forward_stacked(x).numpy(), forward_separate(x).numpy(), rtol=1e-5, atol=1e-5)
    assert forward_stacked(x).shape == (3, 16)
    assert ensemble_layout.entry_instructions(HLO) == 5  # the dot, two fusions, the copy, the conditional
