"""ONNX opsets 1-6: the legacy attributes and forms of the core converters.

onnxruntime does not run opsets below 7, so expected values are written in numpy
from the operator specs of those opsets. Each case runs the imported graph on the
reference interpreter and compiled for x86.
"""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto as TP  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

import graphc  # noqa: E402
from graphc.errors import FrontendError  # noqa: E402
from graphc.frontends.onnx import from_onnx  # noqa: E402
from tests.conftest import assert_close  # noqa: E402

RNG = np.random.default_rng(7)
_ONNX_TYPES = {np.dtype(np.float32): TP.FLOAT, np.dtype(np.int64): TP.INT64, np.dtype(np.int32): TP.INT32}


def f32(*shape):
    return RNG.uniform(-2, 2, size=shape).astype(np.float32)


def legacy_model(op_type, opset, inputs: dict, initializers: dict | None = None, n_outputs=1, out_type=TP.FLOAT, **attrs):
    """One node reading the graph inputs, then the initializers; outputs declare an element type, no shape.

    As IR version 3 requires, the initializers are graph inputs too."""
    everything = {**inputs, **(initializers or {})}
    outputs = [f"y{i}" for i in range(n_outputs)]
    graph = helper.make_graph(
        [helper.make_node(op_type, list(everything), outputs, name="legacy", **attrs)],
        "legacy",
        [helper.make_tensor_value_info(n, _ONNX_TYPES[a.dtype], a.shape) for n, a in everything.items()],
        [helper.make_tensor_value_info(o, out_type, None) for o in outputs],
        initializer=[numpy_helper.from_array(a, n) for n, a in (initializers or {}).items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=3)


def check(model, inputs: dict, expected, compiled=True):
    graph = from_onnx(model)
    args = [inputs[v.name] for v in graph.inputs]
    assert_close(graphc.run_graph(graph, *args)[0], expected, what="interpreter")
    if compiled:
        got = graphc.compile(graph, target="x86", log=lambda *a, **k: None).session().run(*args)[0]
        assert_close(got, expected, what="x86")
    return graph


# ---------------------------------------------------------------------------------------
# broadcast / axis on binary ops (before opset 7)
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "op, fn",
    [("Add", np.add), ("Sub", np.subtract), ("Mul", np.multiply), ("Div", np.divide)],
)
def test_binary_broadcast_axis(op, fn):
    a, b = f32(2, 3, 4, 5), f32(3, 4) + 3.0
    model = legacy_model(op, 6, {"a": a}, {"b": b}, broadcast=1, axis=1)
    check(model, {"a": a}, fn(a, b[:, :, None]), compiled=op == "Add")


def test_binary_broadcast_negative_axis_and_trailing_default():
    a, b = f32(2, 3, 4), f32(3)
    check(legacy_model("Mul", 6, {"a": a}, {"b": b}, broadcast=1, axis=-2), {"a": a}, a * b[:, None], compiled=False)
    c = f32(4)
    check(legacy_model("Mul", 1, {"a": a}, {"c": c}, broadcast=1), {"a": a}, a * c, compiled=False)


def test_pow_opset1_broadcast_axis():
    a, b = np.abs(f32(2, 3)) + 0.5, np.array([2.0, 0.5], np.float32)
    check(legacy_model("Pow", 1, {"a": a}, {"b": b}, broadcast=1, axis=0), {"a": a}, a ** b[:, None])


def test_broadcast_axis_out_of_range_is_an_error():
    a, b = f32(2, 3), f32(3, 4)
    with pytest.raises(FrontendError, match=r"'legacy' \(Add, opset 6\): broadcast axis 1 does not place B \[3, 4\] inside A \[2, 3\]"):
        from_onnx(legacy_model("Add", 6, {"a": a}, {"b": b}, broadcast=1, axis=1))


# ---------------------------------------------------------------------------------------
# other legacy forms
# ---------------------------------------------------------------------------------------
def test_prelu_opset6_per_channel_slope():
    x, slope = f32(2, 3, 4, 5), np.array([0.1, 0.2, 0.3], np.float32)
    check(legacy_model("PRelu", 6, {"x": x}, {"slope": slope}), {"x": x}, np.where(x > 0, x, x * slope[:, None, None]))


def test_cast_opset1_type_name():
    x = f32(3, 4) * 10
    check(legacy_model("Cast", 1, {"x": x}, out_type=TP.INT32, to="INT32"), {"x": x}, x.astype(np.int32))
    with pytest.raises(FrontendError, match="unknown element type to='QUATERNION'"):
        from_onnx(legacy_model("Cast", 1, {"x": x}, out_type=TP.INT32, to="QUATERNION"))


def test_concat_opset1_default_axis_is_1():
    a, b = f32(2, 3), f32(2, 4)
    check(legacy_model("Concat", 1, {"a": a, "b": b}), {"a": a, "b": b}, np.concatenate([a, b], axis=1), compiled=False)


def test_reshape_opset4_shape_attribute():
    x = f32(2, 3, 4)
    check(legacy_model("Reshape", 4, {"x": x}, shape=[4, -1]), {"x": x}, x.reshape(4, 6), compiled=False)
    with pytest.raises(FrontendError, match="needs attribute 'shape'"):
        from_onnx(legacy_model("Reshape", 4, {"x": x}))


@pytest.mark.parametrize("opset, attr", [(1, "paddings"), (2, "pads")])
def test_pad_before_opset11(opset, attr):
    x = f32(2, 3)
    model = legacy_model("Pad", opset, {"x": x}, **{attr: [0, 1, 1, 2]}, value=1.5)
    check(model, {"x": x}, np.pad(x, ((0, 1), (1, 2)), constant_values=1.5), compiled=False)


def test_split_opset1_sizes_as_input():
    x = f32(2, 7)
    model = legacy_model("Split", 1, {"x": x}, {"split": np.array([3, 4], np.int64)}, n_outputs=2, axis=1)
    graph = from_onnx(model)
    got = graphc.run_graph(graph, x)
    assert_close(got[0], x[:, :3])
    assert_close(got[1], x[:, 3:])


def test_tile_opset1_tiles_and_axis_inputs():
    x = f32(2, 3)
    consts = {"tiles": np.array(3, np.int64), "axis": np.array(1, np.int64)}
    check(legacy_model("Tile", 1, {"x": x}, consts), {"x": x}, np.tile(x, (1, 3)), compiled=False)


def _batch_norm_params(shape):
    return {"scale": f32(*shape), "bias": f32(*shape), "mean": f32(*shape), "var": np.abs(f32(*shape)) + 0.5}


def _batch_norm_ref(x, p, eps, param_shape):
    def r(a):
        return a.reshape(param_shape)

    return ((x - r(p["mean"])) / np.sqrt(r(p["var"]) + eps) * r(p["scale"]) + r(p["bias"])).astype(np.float32)


def test_batch_norm_opset1_is_test_and_consumed_inputs():
    x = f32(2, 3, 4, 4)
    p = _batch_norm_params((3,))
    model = legacy_model("BatchNormalization", 1, {"x": x}, p, is_test=1, consumed_inputs=[0, 0, 0, 1, 1], epsilon=1e-3)
    check(model, {"x": x}, _batch_norm_ref(x, p, 1e-3, (3, 1, 1)), compiled=False)


@pytest.mark.parametrize("opset", [6, 7])
def test_batch_norm_spatial_0(opset):
    x = f32(2, 3, 4)
    p = _batch_norm_params((3, 4))
    model = legacy_model("BatchNormalization", opset, {"x": x}, p, spatial=0, epsilon=1e-5)
    check(model, {"x": x}, _batch_norm_ref(x, p, 1e-5, (3, 4)))
    wrong = legacy_model("BatchNormalization", opset, {"x": x}, _batch_norm_params((3,)), spatial=0)
    with pytest.raises(FrontendError, match=r"spatial=0: scale \[3\] should have the shape of one sample \[3, 4\]"):
        from_onnx(wrong)


def test_dropout_opset6_is_identity():
    x = f32(3, 4)
    graph = check(legacy_model("Dropout", 6, {"x": x}, is_test=0, ratio=0.3), {"x": x}, x, compiled=False)
    assert not graph.compute_nodes()


def test_opset1_model_with_several_legacy_nodes():
    """A tiny opset-1 network: Gemm (broadcast C) -> Add (broadcast, axis) -> Relu (consumed_inputs)."""
    x = f32(4, 5)
    w, c, b = f32(5, 3), f32(3), f32(4)
    nodes = [
        helper.make_node("Gemm", ["x", "w", "c"], ["h"], broadcast=1),
        helper.make_node("Add", ["h", "b"], ["h2"], broadcast=1, axis=0),
        helper.make_node("Relu", ["h2"], ["y"], consumed_inputs=[0]),
    ]
    params = {"w": w, "c": c, "b": b}
    graph = helper.make_graph(
        nodes,
        "net",
        [helper.make_tensor_value_info(n, TP.FLOAT, a.shape) for n, a in {"x": x, **params}.items()],
        [helper.make_tensor_value_info("y", TP.FLOAT, [4, 3])],
        initializer=[numpy_helper.from_array(a, n) for n, a in params.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 1)], ir_version=3)
    check(model, {"x": x}, np.maximum(x @ w + c + b[:, None], 0))
