"""Malformed ONNX input always gives a graphc error naming what is wrong, never a crash."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto as TP
from onnx import helper

import graphc
from graphc.errors import FrontendError, GraphcError, UnsupportedOpError

from .conftest import FUZZ_EXAMPLES, tried

X = helper.make_tensor_value_info("x", TP.FLOAT, [2, 3])
Y = helper.make_tensor_value_info("y", TP.FLOAT, [2, 3])


def _model(nodes, inits=(), opset=17, inputs=(X,), outputs=(Y,)):
    graph = helper.make_graph(nodes, "g", list(inputs), list(outputs), initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def _w(values):
    return helper.make_tensor("w", TP.FLOAT, [len(values)], values)


CASES = {
    "cycle": (
        _model([helper.make_node("Relu", ["b"], ["a"], name="n1"), helper.make_node("Relu", ["a"], ["b"], name="n2"),
                helper.make_node("Add", ["x", "a"], ["y"], name="n3")]),
        FrontendError, "topologically sorted",
    ),
    "duplicate node output": (
        _model([helper.make_node("Relu", ["x"], ["a"], name="n1"), helper.make_node("Neg", ["x"], ["a"], name="n2"),
                helper.make_node("Relu", ["a"], ["y"], name="n3")]),
        FrontendError, "'a' has been used as output names multiple times",
    ),
    "duplicate initializer": (_model([helper.make_node("Add", ["x", "w"], ["y"])], [_w([1, 2, 3]), _w([1, 2, 3])]), FrontendError,
                              "w initializer name is not unique"),
    "missing initializer": (_model([helper.make_node("Add", ["x", "w"], ["y"], name="add_w")]), FrontendError, "input 'w'"),
    "shapes do not type-check": (_model([helper.make_node("Add", ["x", "w"], ["y"], name="bad_add")], [_w([1, 2, 3, 4])]),
                                 FrontendError, "node 'bad_add' (Add, opset 17): add at bad_add: shapes [2, 3] and [4] do not broadcast"),
    "opset newer than supported": (_model([helper.make_node("Relu", ["x"], ["y"])], opset=99), FrontendError,
                                   "ONNX opset 99 is newer than the installed onnx package knows"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_models_name_the_problem(case):
    model, error, message = CASES[case]
    with pytest.raises(error) as info:
        graphc.from_onnx(model)
    assert message in str(info.value)


def test_unknown_domain_names_the_domain_and_node():
    m = _model([helper.make_node("Foo", ["x"], ["y"], domain="my.dom", name="custom")])
    m.opset_import.append(helper.make_opsetid("my.dom", 1))
    with pytest.raises(UnsupportedOpError, match=r"Foo \(my.dom opset 1; nodes custom\)"):
        graphc.from_onnx(m)


@pytest.mark.parametrize(
    "data,message",
    [(b"", "not an ONNX model"), (b"\x08\x01\x12\x03abc\xff\xff", "not a valid ONNX file"), (b"hello world", "not a valid ONNX file")],
)
def test_empty_and_garbage_bytes(data, message, tmp_path):
    with pytest.raises(FrontendError, match=message):
        graphc.from_onnx(data)
    path = tmp_path / "bad.onnx"
    path.write_bytes(data)
    with pytest.raises(FrontendError, match="bad.onnx"):
        graphc.from_onnx(str(path))


def _seed_model_bytes() -> bytes:
    """A small but real model: conv, batch norm, relu, pool, gemm, softmax."""
    rng = np.random.default_rng(0)
    inits = [
        onnx.numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "cw"),
        onnx.numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "cb"),
        onnx.numpy_helper.from_array(rng.standard_normal((5, 36)).astype(np.float32), "fw"),
        onnx.numpy_helper.from_array(np.array([1, 36], np.int64), "shape"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        helper.make_node("Reshape", ["p", "shape"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fw"], ["g"], transB=1, name="fc"),
        helper.make_node("Softmax", ["g"], ["y"], axis=-1, name="softmax"),
    ]
    graph = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("x", TP.FLOAT, [1, 1, 6, 6])],
                              [helper.make_tensor_value_info("y", TP.FLOAT, [1, 5])], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10).SerializeToString()


VALID = _seed_model_bytes()


@settings(max_examples=FUZZ_EXAMPLES * 8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 7)), min_size=1, max_size=8),
    st.one_of(st.none(), st.integers(0, len(VALID) - 1)),
)
def test_mutated_protobufs_only_raise_graphc_errors(flips, cut):
    """Bit flips and truncations either still import (and then compile and run) or fail with a graphc error."""
    tried("mutated ONNX protobufs")
    data = bytearray(VALID)
    for pos, bit in flips:
        data[pos] ^= 1 << bit
    if cut is not None:
        data = data[:cut]
    try:
        graph = graphc.from_onnx(bytes(data))
    except GraphcError:
        return
    x = np.random.default_rng(0).standard_normal(graph.inputs[0].shape).astype(graph.inputs[0].type.np_dtype) if (
        graph.inputs and graph.inputs[0].dtype.startswith("f")) else None
    if x is not None and len(graph.inputs) == 1:
        graphc.run_graph(graph, x)  # the interpreter must accept whatever the importer produced

