"""ONNX control flow (If, Loop, Scan) imported by unrolling / selecting, against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto as TP  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

import graphc  # noqa: E402
from graphc.errors import FrontendError, NonConstantInputError  # noqa: E402
from graphc.frontends.onnx import from_onnx  # noqa: E402
from graphc.frontends.onnx_ops import control  # noqa: E402
from graphc.specialize import SpecializingModel  # noqa: E402
from tests.conftest import assert_close  # noqa: E402
from tests.frontends.test_onnx_import import f32, run_ort  # noqa: E402


def body(name, nodes, inputs, outputs):
    """A subgraph; inputs/outputs are (name, elem type, shape) triples."""
    return helper.make_graph(
        nodes, name, [helper.make_tensor_value_info(*i) for i in inputs], [helper.make_tensor_value_info(*o) for o in outputs]
    )


def model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(
        nodes, "m", [helper.make_tensor_value_info(*i) for i in inputs], [helper.make_tensor_value_info(*o) for o in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in dict(initializers).items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def check_runs(m, input_sets, **import_kwargs):
    """Import and compile once; interpreter and x86 must match onnxruntime on every input set."""
    graph = from_onnx(m, **import_kwargs)
    compiled = graphc.compile(graph, target="x86", log=lambda *a, **k: None)
    for inputs in input_sets:
        expected = run_ort(m, inputs)
        args = [inputs[v.name] for v in graph.inputs]
        for what, got in (("interpreter", graphc.run_graph(graph, *args)), ("x86", compiled.session().run(*args))):
            for i, (a, e) in enumerate(zip(got, expected)):
                assert_close(a, e, rtol=1e-5, atol=1e-5, what=f"{what} output {i}")
    return graph


# ---------------------------------------------------------------------------------------
# If
# ---------------------------------------------------------------------------------------
def if_model(then_shape=(2, 3)):
    """y = If(c) then x * 2 (reshaped to then_shape) else x - w."""
    then_nodes = [helper.make_node("Add", ["x", "x"], ["t0"])]
    if then_shape != (2, 3):
        then_nodes.append(helper.make_node("Reshape", ["t0", "then_shape"], ["t"]))
    else:
        then_nodes.append(helper.make_node("Identity", ["t0"], ["t"]))
    then_b = body("then", then_nodes, [], [("t", TP.FLOAT, list(then_shape))])
    else_b = body("else", [helper.make_node("Sub", ["x", "w"], ["e"])], [], [("e", TP.FLOAT, [2, 3])])
    node = helper.make_node("If", ["c"], ["y"], name="branch", then_branch=then_b, else_branch=else_b)
    inits = {"w": f32(3), "then_shape": np.array(then_shape, np.int64)}
    return model([node], [("c", TP.BOOL, []), ("x", TP.FLOAT, [2, 3])], [("y", TP.FLOAT, None)], inits)


def test_if_on_a_runtime_condition_selects_between_both_branches():
    x = f32(2, 3)
    graph = check_runs(if_model(), [{"c": np.array(c), "x": x} for c in (True, False)])
    assert "where" in graph.op_counts()


def test_if_with_branches_of_different_shapes_needs_the_condition():
    m = if_model(then_shape=(3, 2))
    with pytest.raises(NonConstantInputError, match=r"'branch'.*output 0 differ \(f32\[3,2\] vs f32\[2,3\]\).*'c'") as err:
        from_onnx(m)
    assert err.value.input_names == ("c",)
    specialized = SpecializingModel(m)  # specializes on c's value
    x = f32(2, 3)
    for c in (True, False):
        assert_close(specialized.run(np.array(c), x)[0], run_ort(m, {"c": np.array(c), "x": x})[0])


def test_if_on_a_constant_condition_converts_only_the_branch_taken():
    x, m = f32(2, 3), if_model()
    graph = from_onnx(m, input_values={"c": np.array(False)})
    assert graph.op_counts() == {"sub": 1}
    assert_close(graphc.run_graph(graph, x)[0], run_ort(m, {"c": np.array(False), "x": x})[0])


# ---------------------------------------------------------------------------------------
# Loop
# ---------------------------------------------------------------------------------------
def loop_body(cond_nodes=(), cond_name="cond_in"):
    """acc' = acc * 0.5 + i; scan output acc' + x. `cond_nodes` compute the condition output."""
    nodes = [
        helper.make_node("Cast", ["i"], ["i_f"], to=TP.FLOAT),
        helper.make_node("Mul", ["acc", "half"], ["scaled"]),
        helper.make_node("Add", ["scaled", "i_f"], ["acc_out"]),
        helper.make_node("Add", ["acc_out", "x"], ["scan_out"]),
        *cond_nodes,
        helper.make_node("Identity", [cond_name], ["cond_out"]),
    ]
    return body(
        "body", nodes, [("i", TP.INT64, []), ("cond_in", TP.BOOL, []), ("acc", TP.FLOAT, [3])],
        [("cond_out", TP.BOOL, []), ("acc_out", TP.FLOAT, [3]), ("scan_out", TP.FLOAT, [3])],
    )


def loop_model(trip_count_input=False, cond_nodes=(), cond_name="cond_in", trip=4, scan=True):
    b = loop_body(cond_nodes, cond_name)
    if not scan:
        b.output.pop()
    outputs = [("acc_final", TP.FLOAT, [3])] + ([("scans", TP.FLOAT, None)] if scan else [])
    inputs = [("x", TP.FLOAT, [3]), ("acc0", TP.FLOAT, [3]), ("limit", TP.FLOAT, [])]
    inits = {"half": np.float32(0.5), "start": np.array(True)}
    if trip_count_input:
        inputs.append(("M", TP.INT64, []))
    elif trip is not None:
        inits["M"] = np.int64(trip)
    node = helper.make_node("Loop", ["M" if trip is not None or trip_count_input else "", "start", "acc0"], [o[0] for o in outputs], name="loop", body=b)
    return model([node], inputs, outputs, inits)


def loop_inputs(limit=3.0, **extra):
    return {"x": f32(3), "acc0": f32(3), "limit": np.array(limit, np.float32), **extra}


def test_loop_with_a_static_trip_count_unrolls_with_scan_outputs():
    check_runs(loop_model(), [loop_inputs()])


def test_loop_ending_on_a_static_condition():
    """No trip count: the body's condition (i < 2) is known at import time, so the unrolling stops."""
    cond = [helper.make_node("Less", ["i", "two"], ["go_on"])]
    m = loop_model(cond_nodes=cond, cond_name="go_on", trip=None)
    m.graph.initializer.append(numpy_helper.from_array(np.int64(2), "two"))
    graph = check_runs(m, [loop_inputs()])
    assert graph.outputs[1].shape == (3, 3)  # iterations 0, 1, 2


def test_loop_with_a_runtime_condition_freezes_the_carried_values():
    """Continue while max(acc) < limit (a graph input): every iteration runs, the state stops changing."""
    cond = [helper.make_node("ReduceMax", ["acc_out"], ["top"], keepdims=0), helper.make_node("Less", ["top", "limit"], ["go_on"])]
    m = loop_model(cond_nodes=cond, cond_name="go_on", trip=6, scan=False)
    check_runs(m, [loop_inputs(limit) for limit in (-10.0, 1.5, 100.0)])


def test_loop_with_a_runtime_condition_and_scan_outputs_needs_the_condition():
    """The number of scan outputs would depend on run-time values: the condition's inputs must be known."""
    cond = [helper.make_node("ReduceMax", ["acc_out"], ["top"], keepdims=0), helper.make_node("Less", ["top", "limit"], ["go_on"])]
    m = loop_model(cond_nodes=cond, cond_name="go_on", trip=6)
    with pytest.raises(NonConstantInputError, match="'loop'.*computed at run time and the loop has scan outputs") as err:
        from_onnx(m)
    assert err.value.input_names == ("acc0", "limit")
    inputs = loop_inputs(1.5)
    for got, want in zip(SpecializingModel(m).run(**inputs), run_ort(m, inputs)):
        assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_loop_trip_count_from_a_graph_input_specializes():
    m = loop_model(trip_count_input=True)
    with pytest.raises(NonConstantInputError, match="'loop'.*trip count") as err:
        from_onnx(m)
    assert err.value.input_names == ("M",)
    specialized = SpecializingModel(m)
    for trip in (1, 3):
        inputs = loop_inputs(M=np.array(trip, np.int64))
        for got, want in zip(specialized.run(**inputs), run_ort(m, inputs)):
            assert_close(got, want, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------
# Scan
# ---------------------------------------------------------------------------------------
def scan_body():
    """state' = state + a_t * b_t; outputs state' and a_t - b_t."""
    nodes = [
        helper.make_node("Mul", ["a_t", "b_t"], ["prod"]),
        helper.make_node("Add", ["s", "prod"], ["s_out"]),
        helper.make_node("Sub", ["a_t", "b_t"], ["diff"]),
    ]
    return body("scan_body", nodes, [("s", TP.FLOAT, [2]), ("a_t", TP.FLOAT, [2]), ("b_t", TP.FLOAT, [2])],
                [("s_out", TP.FLOAT, [2]), ("s_out2", TP.FLOAT, [2]), ("diff", TP.FLOAT, [2])])


def test_scan_directions_and_axes():
    b = scan_body()
    b.node.append(helper.make_node("Identity", ["s_out"], ["s_out2"]))
    node = helper.make_node(
        "Scan", ["s0", "a", "b"], ["s_final", "states", "diffs"], name="scan", body=b, num_scan_inputs=2,
        scan_input_axes=[0, 1], scan_input_directions=[0, 1], scan_output_axes=[0, -1], scan_output_directions=[1, 0],
    )
    m = model([node], [("s0", TP.FLOAT, [2]), ("a", TP.FLOAT, [4, 2]), ("b", TP.FLOAT, [2, 4])],
              [("s_final", TP.FLOAT, [2]), ("states", TP.FLOAT, [4, 2]), ("diffs", TP.FLOAT, [2, 4])])
    check_runs(m, [{"s0": f32(2), "a": f32(4, 2), "b": f32(2, 4)}])


def test_scan_opset8_batched():
    b = scan_body()
    b.node.append(helper.make_node("Identity", ["s_out"], ["s_out2"]))
    node = helper.make_node("Scan", ["", "s0", "a", "b"], ["s_final", "states", "diffs"], body=b, num_scan_inputs=2, directions=[1, 0])
    m = model([node], [("s0", TP.FLOAT, [3, 2]), ("a", TP.FLOAT, [3, 4, 2]), ("b", TP.FLOAT, [3, 4, 2])],
              [("s_final", TP.FLOAT, [3, 2]), ("states", TP.FLOAT, [3, 4, 2]), ("diffs", TP.FLOAT, [3, 4, 2])], opset=8)
    check_runs(m, [{"s0": f32(3, 2), "a": f32(3, 4, 2), "b": f32(3, 4, 2)}])


def test_loop_without_a_static_end_stops_unrolling(monkeypatch):
    monkeypatch.setattr(control, "MAX_UNROLL", 5)
    with pytest.raises(FrontendError, match="'loop'.*unrolling stopped after 5 iterations"):
        from_onnx(loop_model(trip=None))


def test_loop_growing_a_carried_value_needs_its_condition():
    """A runtime condition cannot freeze a value whose shape grows each iteration: the condition must be known."""
    b = body("grow", [helper.make_node("Concat", ["acc", "x"], ["acc_out"], axis=0), helper.make_node("Identity", ["cond_in"], ["cond_out"])],
             [("i", TP.INT64, []), ("cond_in", TP.BOOL, []), ("acc", TP.FLOAT, None)], [("cond_out", TP.BOOL, []), ("acc_out", TP.FLOAT, None)])
    node = helper.make_node("Loop", ["M", "c", "x"], ["grown"], name="loop", body=b)
    m = model([node], [("c", TP.BOOL, []), ("x", TP.FLOAT, [2])], [("grown", TP.FLOAT, None)], {"M": np.int64(3)})
    with pytest.raises(NonConstantInputError, match="'loop'.*carried value 0 changes type.*the loop's condition") as err:
        from_onnx(m)
    assert err.value.input_names == ("c",)
    specialized, x = SpecializingModel(m), f32(2)
    for c in (True, False):
        assert_close(specialized.run(np.array(c), x)[0], run_ort(m, {"c": np.array(c), "x": x})[0])
