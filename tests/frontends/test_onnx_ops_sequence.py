"""ONNX sequence and optional ops (resolved at import time: a sequence is a list of tensors), against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto as TP  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

from graphc.errors import FrontendError  # noqa: E402
from graphc.frontends.onnx import from_onnx  # noqa: E402
from tests.frontends.test_onnx_import import check, f32  # noqa: E402


def model(nodes, inputs: dict, outputs, initializers=None, opset=17):
    """inputs: name -> example array; outputs: names (typed by shape inference)."""
    graph = helper.make_graph(
        nodes, "m",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape)) for n, a in inputs.items()],
        [helper.make_empty_tensor_value_info(o) for o in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)
    return onnx.shape_inference.infer_shapes(m)


def test_insert_erase_at_length_concat():
    x, y, z = f32(2, 3), f32(1, 3), f32(4, 3)
    i64 = lambda v: np.array(v, np.int64)  # noqa: E731
    nodes = [
        helper.make_node("SequenceEmpty", [], ["s0"], dtype=TP.FLOAT),
        helper.make_node("SequenceInsert", ["s0", "x"], ["s1"]),
        helper.make_node("SequenceInsert", ["s1", "y", "zero"], ["s2"]),  # [y, x]
        helper.make_node("SequenceInsert", ["s2", "z", "minus_one"], ["s3"]),  # [y, z, x]
        helper.make_node("SequenceInsert", ["s3", "x", "three"], ["s4"]),  # [y, z, x, x]: position == length appends
        helper.make_node("SequenceErase", ["s4", "one"], ["s5"]),  # [y, x, x]
        helper.make_node("SequenceErase", ["s5"], ["s6"]),  # [y, x]
        helper.make_node("SequenceAt", ["s3", "minus_one"], ["last"]),
        helper.make_node("SequenceLength", ["s4"], ["n"]),
        helper.make_node("ConcatFromSequence", ["s6"], ["cat"], axis=0),
    ]
    inits = {"zero": i64(0), "one": i64(1), "three": i64(3), "minus_one": i64(-1)}
    graph = check(model(nodes, {"x": x, "y": y, "z": z}, ["last", "n", "cat"], inits), {"x": x, "y": y, "z": z})
    assert set(graph.op_counts()) == {"concat"}  # everything else is resolved at import time


@pytest.mark.parametrize(
    "split,attrs",
    [(None, {"keepdims": 0}), (None, {"axis": 1}), (np.array(2, np.int64), {"axis": 1}), (np.array([1, 3, 1], np.int64), {"axis": 1})],
    ids=["ones-nokeepdims", "ones-axis1", "scalar-with-remainder", "sizes"],
)
def test_split_to_sequence_then_stack(split, attrs):
    x = f32(3, 5)
    inputs = ["x"] if split is None else ["x", "split"]
    nodes = [
        helper.make_node("SplitToSequence", inputs, ["seq"], **attrs),
        helper.make_node("SequenceAt", ["seq", "zero"], ["first"]),
        helper.make_node("SequenceLength", ["seq"], ["n"]),
        helper.make_node("ConcatFromSequence", ["seq"], ["joined"], axis=attrs.get("axis", 0)),
    ]
    inits = {"zero": np.array(0, np.int64), **({} if split is None else {"split": split})}
    check(model(nodes, {"x": x}, ["first", "n", "joined"], inits), {"x": x})


def test_concat_from_sequence_new_axis():
    x, y = f32(2, 3), f32(2, 3)
    nodes = [
        helper.make_node("SequenceConstruct", ["x", "y", "x"], ["seq"]),
        helper.make_node("ConcatFromSequence", ["seq"], ["stacked"], axis=-1, new_axis=1),
    ]
    check(model(nodes, {"x": x, "y": y}, ["stacked"]), {"x": x, "y": y})


def test_sequence_map_with_a_tensor_input():
    x, w = f32(4, 3), f32(3)
    map_body = helper.make_graph(
        [helper.make_node("Mul", ["row", "scale"], ["scaled"])], "map_body",
        [helper.make_tensor_value_info("row", TP.FLOAT, [3]), helper.make_tensor_value_info("scale", TP.FLOAT, [3])],
        [helper.make_tensor_value_info("scaled", TP.FLOAT, [3])],
    )
    nodes = [
        helper.make_node("SplitToSequence", ["x"], ["rows"], keepdims=0),
        helper.make_node("SequenceMap", ["rows", "w"], ["out_rows"], body=map_body),
        helper.make_node("ConcatFromSequence", ["out_rows"], ["y"], axis=0, new_axis=1),
    ]
    check(model(nodes, {"x": x, "w": w}, ["y"]), {"x": x, "w": w})


def test_sequences_through_if_on_a_runtime_condition():
    """Both branches build a sequence of the same types: the If selects element by element."""
    x, y = f32(2), f32(2)
    then_b = helper.make_graph([helper.make_node("SequenceConstruct", ["x", "y"], ["s"])], "then", [], [helper.make_tensor_sequence_value_info("s", TP.FLOAT, [2])])
    else_b = helper.make_graph([helper.make_node("SequenceConstruct", ["y", "x"], ["s2"])], "else", [], [helper.make_tensor_sequence_value_info("s2", TP.FLOAT, [2])])
    nodes = [
        helper.make_node("If", ["c"], ["seq"], then_branch=then_b, else_branch=else_b),
        helper.make_node("SequenceAt", ["seq", "zero"], ["first"]),
    ]
    m = model(nodes, {"c": np.array(True), "x": x, "y": y}, ["first"], {"zero": np.array(0, np.int64)})
    for c in (True, False):
        check(m, {"c": np.array(c), "x": x, "y": y})


def test_optionals():
    x = f32(3)
    nodes = [
        helper.make_node("Optional", ["x"], ["some"]),
        helper.make_node("Optional", [], ["none"], type=helper.make_tensor_type_proto(TP.FLOAT, [3])),
        helper.make_node("OptionalHasElement", ["some"], ["has_some"]),
        helper.make_node("OptionalHasElement", ["none"], ["has_none"]),
        helper.make_node("OptionalGetElement", ["some"], ["value"]),
        helper.make_node("Relu", ["value"], ["y"]),
    ]
    check(model(nodes, {"x": x}, ["has_some", "has_none", "y"], opset=18), {"x": x})


def _output_info(name):
    if name == "opt":
        return helper.make_value_info(name, helper.make_optional_type_proto(helper.make_tensor_type_proto(TP.FLOAT, [3])))
    return helper.make_tensor_value_info(name, TP.FLOAT, [3])


def _errors_model(nodes, outputs=("y",)):
    graph = helper.make_graph(
        nodes, "m", [helper.make_tensor_value_info("x", TP.FLOAT, [3])], [_output_info(o) for o in outputs],
        initializer=[numpy_helper.from_array(np.array(5, np.int64), "five")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


@pytest.mark.parametrize(
    "nodes,outputs,message",
    [
        ([helper.make_node("Optional", [], ["opt"], type=helper.make_tensor_type_proto(TP.FLOAT, [3])), helper.make_node("Relu", ["x"], ["y"])], ("opt", "y"),
         "graph output\\(s\\) 'opt' are empty optionals"),
        ([helper.make_node("SequenceConstruct", ["x", "x"], ["s"]), helper.make_node("SequenceAt", ["s", "five"], ["y"], name="at")], ("y",),
         "'at'.*position 5 is out of range for a sequence of 2 tensor"),
        ([helper.make_node("Optional", [], ["o"], type=helper.make_tensor_type_proto(TP.FLOAT, [3])), helper.make_node("OptionalGetElement", ["o"], ["y"], name="get")],
         ("y",), "'get'.*the optional is empty"),
    ],
    ids=["empty-optional-output", "position-out-of-range", "get-from-empty-optional"],
)
def test_errors_name_the_node(nodes, outputs, message):
    with pytest.raises(FrontendError, match=message):
        from_onnx(_errors_model(nodes, outputs))
