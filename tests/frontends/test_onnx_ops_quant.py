"""ONNX quantization ops (QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, MatMulInteger,
ConvInteger, QLinearMatMul, QLinearConv): integer results must match exactly.

The reference is onnxruntime, except for QLinearMatMul / QLinearConv: graphc requantizes in
float64 as the ONNX reference implementation (which generated the ONNX node tests) does,
onnxruntime in float32, and the two round a few near-ties differently."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto as TP  # noqa: E402
from onnx import helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from graphc.errors import FrontendError  # noqa: E402
from graphc.frontends.onnx import from_onnx  # noqa: E402
from tests.frontends.test_onnx_import import RNG, check, f32, make_model, one_node  # noqa: E402


def ints(dtype, *shape, low=None, high=None):
    info = np.iinfo(dtype)
    return RNG.integers(info.min if low is None else low, (info.max if high is None else high) + 1, size=shape).astype(dtype)


def halves(*shape, scale=0.125):
    """Floats that land on .5 after division by `scale` (ties must round to even); exactly so for a
    power-of-two scale (graphc's canonicalize turns a division by a constant into a multiplication
    by its reciprocal, which rounds differently unless the reciprocal is exact)."""
    return ((RNG.integers(-60, 60, size=shape) + 0.5) * scale).astype(np.float32)


@pytest.mark.parametrize(
    "x_shape,scale,zero_point,attrs,opset",
    [
        ((2, 8), np.float32(0.125), np.uint8(128), {}, 10),
        ((2, 3, 4), np.array([0.05, 0.1, 0.2], np.float32), np.array([-3, 0, 5], np.int8), {"axis": 1}, 13),
        ((3, 5), np.array([[0.1, 0.2], [0.3, 0.05], [0.1, 0.1]], np.float32), np.array([[1, 2], [0, 3], [7, 8]], np.uint8), {"axis": 1, "block_size": 3}, 21),
        ((4, 6), np.float32(2.0**-6), np.int16(-300), {}, 21),
        ((4, 6), np.float32(2.0**-9), np.uint16(1000), {}, 21),
    ],
    ids=["per-tensor-u8-opset10", "per-axis-i8", "blocked-with-remainder", "int16", "uint16"],
)
def test_quantize_linear(x_shape, scale, zero_point, attrs, opset):
    x = halves(*x_shape, scale=float(np.asarray(scale).reshape(-1)[0]))
    x.reshape(-1)[:3] = [1e4, -1e4, 0.0]  # saturation both ways
    check(one_node("QuantizeLinear", {"x": x}, initializers={"s": scale, "zp": zero_point}, opset=opset, **attrs), {"x": x})


def test_quantize_linear_runtime_scale_and_output_dtype():
    """Scales may be graph inputs; without a zero point, output_dtype (opset 21) picks the type."""
    x, scale = halves(3, 4, scale=0.1), np.array([0.1, 0.2, 0.4], np.float32)
    model = one_node("QuantizeLinear", {"x": x, "s": scale}, opset=21, axis=0, output_dtype=TP.INT8)
    check(model, {"x": x, "s": scale})


@pytest.mark.parametrize(
    "x,scale,zero_point,attrs",
    [
        (ints(np.uint8, 2, 3, 4), np.array([0.5, 0.25, 2.0], np.float32), np.array([128, 0, 255], np.uint8), {"axis": 1}),
        (ints(np.int8, 4, 6), np.array([[0.5, 0.1], [1.0, 2.0], [0.25, 4.0], [3.0, 0.5]], np.float32), np.array([[1, -2], [0, 3], [7, -8], [0, 0]], np.int8), {"axis": 1, "block_size": 3}),
        (ints(np.int32, 5, low=-(10**6), high=10**6), np.float32(0.001), None, {}),
    ],
    ids=["per-axis-u8", "blocked-i8", "int32-no-zero-point"],
)
def test_dequantize_linear(x, scale, zero_point, attrs):
    inits = {"s": scale} if zero_point is None else {"s": scale, "zp": zero_point}
    check(one_node("DequantizeLinear", {"x": x}, initializers=inits, opset=21, **attrs), {"x": x})


@pytest.mark.parametrize("low,high", [(-3.0, 5.0), (0.5, 4.0), (-4.0, -1.0), (0.0, 0.0)], ids=["mixed", "positive", "negative", "zeros"])
def test_dynamic_quantize_linear(low, high):
    x = f32(3, 7, low=low, high=high) if high > low else np.zeros((3, 7), np.float32)
    check(one_node("DynamicQuantizeLinear", {"x": x}, n_outputs=3, opset=11), {"x": x})


def test_matmul_integer():
    a, b = ints(np.uint8, 2, 4, 16), ints(np.int8, 16, 5)
    check(one_node("MatMulInteger", {"a": a, "b": b}, initializers={"za": np.uint8(3), "zb": np.int8(-7)}, opset=10), {"a": a, "b": b})


def test_matmul_integer_per_row_and_column_zero_points():
    """The spec allows a per-row A and a per-column B zero point (onnxruntime does not): numpy is the reference."""
    a, b = ints(np.uint8, 2, 4, 16), ints(np.uint8, 16, 5)
    zp_a, zp_b = ints(np.uint8, 4), ints(np.uint8, 5)
    expected = (a.astype(np.int32) - zp_a[:, None].astype(np.int32)) @ (b.astype(np.int32) - zp_b.astype(np.int32))
    model = one_node("MatMulInteger", {"a": a, "b": b}, initializers={"za": zp_a, "zb": zp_b}, opset=10)
    check(model, {"a": a, "b": b}, expected=[expected])


@pytest.mark.parametrize("attrs", [{"pads": [1, 1, 1, 1]}, {"strides": [2, 2], "group": 2}, {"auto_pad": "SAME_UPPER"}], ids=["pads", "strided-groups", "same-upper"])
def test_conv_integer(attrs):
    x, w = ints(np.uint8, 1, 4, 7, 7), ints(np.uint8, 6, 4 // attrs.get("group", 1), 3, 3)
    check(one_node("ConvInteger", {"x": x, "w": w}, initializers={"zx": np.uint8(100), "zw": np.uint8(120)}, opset=10, **attrs), {"x": x, "w": w})


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_matmul_per_column_b(dtype):
    a, b = ints(dtype, 2, 3, 8), ints(dtype, 8, 4)
    inits = {
        "sa": np.float32(0.02), "za": ints(dtype), "sb": np.array([0.01, 0.02, 0.03, 0.05], np.float32),
        "zb": ints(dtype, 4, low=-5 if dtype == np.int8 else 0, high=5), "sy": np.float32(0.3), "zy": ints(dtype),
    }
    names = ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"]
    node = helper.make_node("QLinearMatMul", names, ["y"])
    m = make_model([node], {"a": a, "b": b}, ["y"], inits, opset=10)
    check(m, {"a": a, "b": b}, expected=ReferenceEvaluator(m).run(None, {"a": a, "b": b}))


def test_qlinear_conv_per_channel_with_bias():
    x, w = ints(np.uint8, 1, 3, 6, 6), ints(np.int8, 4, 3, 3, 3)
    inits = {
        "sx": np.float32(0.05), "zx": np.uint8(110), "sw": np.array([0.01, 0.02, 0.005, 0.03], np.float32),
        "zw": np.zeros(4, np.int8), "sy": np.float32(0.7), "zy": np.uint8(120), "bias": ints(np.int32, 4, low=-500, high=500),
    }
    names = ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy", "bias"]
    node = helper.make_node("QLinearConv", names, ["y"], pads=[1, 1, 1, 1])
    m = make_model([node], {"x": x, "w": w}, ["y"], inits, opset=10)
    check(m, {"x": x, "w": w}, expected=ReferenceEvaluator(m).run(None, {"x": x, "w": w}))


def test_float8_zero_point_is_a_clear_error():
    node = helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["y"])
    graph = helper.make_graph(
        [node], "q", [helper.make_tensor_value_info("x", TP.FLOAT, [4])], [helper.make_tensor_value_info("y", TP.FLOAT8E4M3FN, [4])],
        initializer=[helper.make_tensor("s", TP.FLOAT, [], [0.5]), helper.make_tensor("zp", TP.FLOAT8E4M3FN, [], [0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    with pytest.raises(FrontendError, match="FLOAT8E4M3FN is not supported"):
        from_onnx(model)
