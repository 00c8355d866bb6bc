"""`NodeContext.subgraph`: converting graph attributes (If / Loop / Scan bodies) inline.

The converters here are test doubles registered for the duration of a test (the real
If / Loop converters live with the control-flow ops); they exercise the API's contract:
outer-scope visibility, input binding, local names, nesting, folding and errors.
"""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto as TP  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

import graphc  # noqa: E402
from graphc.errors import FrontendError, UnsupportedOpError  # noqa: E402
from graphc.frontends import onnx as onnx_frontend  # noqa: E402
from graphc.frontends.onnx import from_onnx  # noqa: E402
from tests.conftest import assert_close  # noqa: E402

TEST_DOMAIN = "test.graphc"


def _if_by_constant(ctx):
    """An If that takes the branch its constant condition selects."""
    cond = bool(np.asarray(ctx.const(0, "cond")).reshape(-1)[0])
    return ctx.subgraph("then_branch" if cond else "else_branch")


def _repeat(ctx):
    """A Loop-like test op: runs its body `times` times, threading one carried value through it."""
    carried = ctx.input(0)
    for i in range(int(ctx.attr("times"))):
        (carried,) = ctx.subgraph("body", [np.array(i, np.int64), carried])
    return carried


@pytest.fixture(autouse=True)
def test_converters(monkeypatch):
    onnx_frontend._load_converters()
    monkeypatch.setitem(onnx_frontend.CONVERTERS, ("", "If"), _if_by_constant)
    monkeypatch.setitem(onnx_frontend.CONVERTERS, (TEST_DOMAIN, "Repeat"), _repeat)


def _branch(name, nodes, outputs, inputs=(), initializers=()):
    return helper.make_graph(nodes, name, list(inputs), [helper.make_tensor_value_info(o, t, s) for o, t, s in outputs],
                             initializer=list(initializers))


def _model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "m", inputs, outputs, initializer=list(initializers))
    opsets = [helper.make_opsetid("", opset), helper.make_opsetid(TEST_DOMAIN, 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=10)


def _if_model(cond: bool):
    """y = If(cond) then (x + 1) else (x * w_outer), with a local initializer in the then branch."""
    then_branch = _branch(
        "then", [helper.make_node("Add", ["x", "one"], ["t_out"], name="add_one")], [("t_out", TP.FLOAT, [2, 3])],
        initializers=[numpy_helper.from_array(np.ones((), np.float32), "one")],
    )
    else_branch = _branch("else", [helper.make_node("Mul", ["x", "w"], ["e_out"], name="scale")], [("e_out", TP.FLOAT, [2, 3])])
    nodes = [
        helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array(cond))),
        helper.make_node("If", ["c"], ["y"], name="branch", then_branch=then_branch, else_branch=else_branch),
    ]
    return _model(
        nodes, [helper.make_tensor_value_info("x", TP.FLOAT, [2, 3])], [helper.make_tensor_value_info("y", TP.FLOAT, [2, 3])],
        [numpy_helper.from_array(np.full((3,), 2.5, np.float32), "w")],
    )


@pytest.mark.parametrize("cond", [True, False])
def test_if_with_constant_condition(cond):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    g = from_onnx(_if_model(cond))
    expected = x + 1 if cond else x * 2.5
    assert_close(graphc.run_graph(g, x)[0], expected)
    locs = [n.loc for n in g.compute_nodes()]
    assert locs == (["branch/then_branch/add_one"] if cond else ["branch/else_branch/scale"])
    out = graphc.compile(g, target="x86", log=lambda *a, **k: None).session().run(x)[0]
    assert_close(out, expected)


def test_body_inputs_are_bound_and_names_stay_local(monkeypatch):
    """A body run three times: its formal inputs bind to the given tensors; its own names do not leak."""
    body = _branch(
        "body",
        [
            helper.make_node("Cast", ["i"], ["i_f"], to=TP.FLOAT),
            helper.make_node("Add", ["acc", "i_f"], ["tmp"]),
            helper.make_node("Mul", ["tmp", "k"], ["acc_out"]),  # k: outer scope
        ],
        [("acc_out", TP.FLOAT, [2])],
        inputs=[helper.make_tensor_value_info("i", TP.INT64, []), helper.make_tensor_value_info("acc", TP.FLOAT, [2])],
    )
    nodes = [helper.make_node("Repeat", ["x"], ["y"], domain=TEST_DOMAIN, name="rep", times=3, body=body)]
    model = _model(nodes, [helper.make_tensor_value_info("x", TP.FLOAT, [2])], [helper.make_tensor_value_info("y", TP.FLOAT, [2])],
                   [numpy_helper.from_array(np.array([2.0, 0.5], np.float32), "k")])
    x = np.array([1.0, -1.0], np.float32)
    expected = x.copy()
    for i in range(3):
        expected = (expected + i) * np.array([2.0, 0.5], np.float32)
    g = from_onnx(model)
    assert_close(graphc.run_graph(g, x)[0], expected)

    # the body's name "tmp" is local: a node after the loop cannot read it
    leak = nodes + [helper.make_node("Relu", ["tmp"], ["z"], name="reads_tmp")]
    model2 = _model(leak, [helper.make_tensor_value_info("x", TP.FLOAT, [2])], [helper.make_tensor_value_info("z", TP.FLOAT, [2])],
                    [numpy_helper.from_array(np.ones(2, np.float32), "k")])
    monkeypatch.setattr(onnx_frontend, "_check", lambda model, where: None)  # the checker would reject it first
    with pytest.raises(FrontendError, match="reads_tmp.*reads 'tmp', which nothing defines"):
        from_onnx(model2)


def test_nested_subgraphs_see_every_enclosing_scope():
    inner_then = _branch("inner_then", [helper.make_node("Sub", ["a", "x"], ["r"], name="sub")], [("r", TP.FLOAT, [3])])
    inner_else = _branch("inner_else", [helper.make_node("Neg", ["x"], ["r2"])], [("r2", TP.FLOAT, [3])])
    outer_then = _branch(
        "outer_then",
        [
            helper.make_node("Add", ["x", "x"], ["a"], name="double"),  # defined in the outer body, read by the inner one
            helper.make_node("Constant", [], ["c2"], value=numpy_helper.from_array(np.array(True))),
            helper.make_node("If", ["c2"], ["res"], name="inner", then_branch=inner_then, else_branch=inner_else),
        ],
        [("res", TP.FLOAT, [3])],
    )
    outer_else = _branch("outer_else", [helper.make_node("Identity", ["x"], ["same"])], [("same", TP.FLOAT, [3])])
    nodes = [
        helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array(True))),
        helper.make_node("If", ["c"], ["y"], name="outer", then_branch=outer_then, else_branch=outer_else),
    ]
    model = _model(nodes, [helper.make_tensor_value_info("x", TP.FLOAT, [3])], [helper.make_tensor_value_info("y", TP.FLOAT, [3])])
    x = np.array([1.0, 2.0, -3.0], np.float32)
    g = from_onnx(model)
    assert_close(graphc.run_graph(g, x)[0], x)  # (x + x) - x
    assert "outer/then_branch/inner/then_branch/sub" in [n.loc for n in g.compute_nodes()]


def test_constant_bodies_fold():
    then_branch = _branch("then", [helper.make_node("Constant", [], ["v"], value_ints=[4, 6])], [("v", TP.INT64, [2])])
    else_branch = _branch("else", [helper.make_node("Constant", [], ["v2"], value_ints=[6, 4])], [("v2", TP.INT64, [2])])
    nodes = [
        helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array(False))),
        helper.make_node("If", ["c"], ["shape"], then_branch=then_branch, else_branch=else_branch),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),  # needs the If's output at import time
    ]
    model = _model(nodes, [helper.make_tensor_value_info("x", TP.FLOAT, [4, 6])], [helper.make_tensor_value_info("y", TP.FLOAT, [6, 4])])
    g = from_onnx(model)
    assert g.outputs[0].shape == (6, 4)


def test_ops_inside_bodies_are_checked_for_support():
    then_branch = _branch("then", [helper.make_node("NoSuchOp", ["x"], ["t"], name="deep")], [("t", TP.FLOAT, [2])])
    else_branch = _branch("else", [helper.make_node("Identity", ["x"], ["e"])], [("e", TP.FLOAT, [2])])
    nodes = [
        helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array(False))),
        helper.make_node("If", ["c"], ["y"], name="br", then_branch=then_branch, else_branch=else_branch),
    ]
    model = _model(nodes, [helper.make_tensor_value_info("x", TP.FLOAT, [2])], [helper.make_tensor_value_info("y", TP.FLOAT, [2])])
    with pytest.raises(UnsupportedOpError, match=r"NoSuchOp \(ai.onnx opset 17; nodes br/then_branch/deep\)"):
        onnx_frontend.Importer(model, "m", "", None).run()


def _repeat_model(body_inputs):
    body = _branch("body", [helper.make_node("Identity", ["acc"], ["acc_out"])], [("acc_out", TP.FLOAT, [2])], inputs=body_inputs)
    nodes = [helper.make_node("Repeat", ["x"], ["y"], domain=TEST_DOMAIN, name="rep", times=1, body=body)]
    return _model(nodes, [helper.make_tensor_value_info("x", TP.FLOAT, [2])], [helper.make_tensor_value_info("y", TP.FLOAT, [2])])


def test_wrong_input_count_and_type_name_the_subgraph():
    acc = helper.make_tensor_value_info("acc", TP.FLOAT, [2])
    # _repeat passes an int64 counter, the body declares a float one
    with pytest.raises(FrontendError, match=r"'rep'.*subgraph 'rep/body' input 'i': the model declares element type FLOAT, graphc has i64"):
        from_onnx(_repeat_model([helper.make_tensor_value_info("i", TP.FLOAT, []), acc]))
    with pytest.raises(FrontendError, match=r"'rep'.*subgraph 'rep/body' takes 1 input\(s\) \(acc\), given 2"):
        from_onnx(_repeat_model([acc]))


def test_missing_graph_attribute_is_an_error(monkeypatch):
    monkeypatch.setitem(onnx_frontend.CONVERTERS, (TEST_DOMAIN, "Repeat"), lambda ctx: ctx.subgraph("nope", []))
    nodes = [helper.make_node("Repeat", ["x"], ["y"], domain=TEST_DOMAIN, name="rep")]
    model = _model(nodes, [helper.make_tensor_value_info("x", TP.FLOAT, [2])], [helper.make_tensor_value_info("y", TP.FLOAT, [2])])
    with pytest.raises(FrontendError, match="'rep'.*has no graph attribute 'nope'"):
        from_onnx(model)
