"""ONNX importer: tiny models built with onnx.helper (and a few torch exports) checked against onnxruntime.

Every numeric case runs the imported graph on the reference interpreter AND compiled
for x86, and compares both with onnxruntime. Opset-dependent forms (attributes that
became inputs) are covered per opset; error paths check that the message names the
file, node, op, input or dim.
"""
from __future__ import annotations

import io
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto as TP  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

import graphc  # noqa: E402
from graphc.errors import FrontendError, UnsupportedOpError  # noqa: E402
from graphc.frontends.onnx import from_onnx, supported_ops  # noqa: E402
from tests.conftest import assert_close, assert_roundtrip  # noqa: E402

RNG = np.random.default_rng(0)
_NP_TO_ONNX = {
    np.dtype(np.float32): TP.FLOAT, np.dtype(np.float16): TP.FLOAT16, np.dtype(np.float64): TP.DOUBLE,
    np.dtype(np.int64): TP.INT64, np.dtype(np.int32): TP.INT32, np.dtype(np.int8): TP.INT8,
    np.dtype(np.uint8): TP.UINT8, np.dtype(np.bool_): TP.BOOL,
    np.dtype(np.int16): TP.INT16, np.dtype(np.uint16): TP.UINT16, np.dtype(np.uint32): TP.UINT32, np.dtype(np.uint64): TP.UINT64,
}


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def f32(*shape, low=-2.0, high=2.0):
    return RNG.uniform(low, high, size=shape).astype(np.float32)


def make_model(nodes, inputs: dict, outputs, initializers: dict | None = None, opset: int = 17, name: str = "test"):
    """inputs: name -> example array (its dtype and shape are declared); outputs: names (types inferred)."""
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(n, _NP_TO_ONNX[a.dtype], list(a.shape)) for n, a in inputs.items()],
        [helper.make_empty_tensor_value_info(o) for o in outputs],
        initializer=[numpy_helper.from_array(np.asarray(a), n) for n, a in (initializers or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def run_ort(model, inputs: dict) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)


def check(model, inputs: dict, rtol=1e-4, atol=1e-4, compiled=True, input_shapes=None, expected=None):
    """Import `model`; interpreter and x86 results must match onnxruntime (or `expected`). Returns the graph."""
    expected = run_ort(model, inputs) if expected is None else expected
    graph = from_onnx(model, input_shapes=input_shapes)
    assert [v.name for v in graph.inputs] == list(inputs)
    assert graph.output_names == [o.name for o in model.graph.output]
    args = [inputs[v.name] for v in graph.inputs]
    for i, (a, e) in enumerate(zip(graphc.run_graph(graph, *args), expected)):
        assert_close(a, e, rtol=rtol, atol=atol, what=f"interpreter output {i}")
    if compiled:
        got = graphc.compile(graph, target="x86", log=lambda *a, **k: None).session().run(*args)
        for i, (a, e) in enumerate(zip(got, expected)):
            assert_close(a, e, rtol=rtol, atol=atol, what=f"x86 output {i}")
    return graph


def one_node(op_type, inputs: dict, n_outputs=1, initializers=None, opset=17, **attrs):
    """A model with a single node reading the graph inputs then the initializers (in order)."""
    names = list(inputs) + list(initializers or {})
    outs = [f"y{i}" for i in range(n_outputs)]
    node = helper.make_node(op_type, names, outs, name=f"{op_type.lower()}_node", **attrs)
    return make_model([node], inputs, outs, initializers, opset)


def ops_of(graph) -> set[str]:
    return set(graph.op_counts())


# ---------------------------------------------------------------------------------------
# elementwise
# ---------------------------------------------------------------------------------------
UNARY = [
    ("Relu", {}, -2, 2),
    ("Sigmoid", {}, -6, 6),
    ("Tanh", {}, -3, 3),
    ("Erf", {}, -2, 2),
    ("Exp", {}, -3, 3),
    ("Log", {}, 0.1, 5),
    ("Sqrt", {}, 0.1, 5),
    ("Reciprocal", {}, 0.5, 4),
    ("Neg", {}, -2, 2),
    ("Abs", {}, -2, 2),
    ("LeakyRelu", {}, -2, 2),
    ("LeakyRelu", {"alpha": 0.3}, -2, 2),
    ("Elu", {"alpha": 0.7}, -2, 2),
    ("HardSigmoid", {}, -6, 6),
    ("HardSwish", {}, -6, 6),
    ("Softplus", {}, -30, 30),
]


@pytest.mark.parametrize("op,attrs,low,high", UNARY, ids=[f"{u[0]}{'-' + '-'.join(map(str, u[1].values())) if u[1] else ''}" for u in UNARY])
def test_unary(op, attrs, low, high):
    x = f32(3, 4, 5, low=low, high=high)
    check(one_node(op, {"x": x}, **attrs), {"x": x})


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_opset20(approximate):
    x = f32(4, 16, low=-4, high=4)
    g = check(one_node("Gelu", {"x": x}, opset=20, approximate=approximate), {"x": x})
    assert ops_of(g) == {"gelu"}


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Pow"])
def test_binary_broadcast(op):
    a = f32(2, 3, 4, low=0.5, high=2)
    b = f32(3, 1, low=0.5, high=2)
    check(one_node(op, {"a": a, "b": b}), {"a": a, "b": b})


def test_binary_with_initializer_int64():
    a = RNG.integers(-20, 20, size=(3, 5)).astype(np.int64)
    w = RNG.integers(1, 5, size=(5,)).astype(np.int64)
    check(one_node("Div", {"a": a}, initializers={"w": w}), {"a": a})
    check(one_node("Mul", {"a": a}, initializers={"w": w}), {"a": a})


def test_pow_int_exponent():
    """opset 12+: the exponent may have another dtype than the base."""
    x = f32(3, 4, low=0.5, high=2)
    check(one_node("Pow", {"x": x}, initializers={"e": np.array(3, np.int64)}, opset=15), {"x": x})


@pytest.mark.parametrize("op", ["Max", "Min", "Sum", "Mean"])
def test_variadic(op):
    a, b, c = f32(2, 3, 4), f32(3, 4), f32(4)
    check(one_node(op, {"a": a, "b": b, "c": c}), {"a": a, "b": b, "c": c})
    check(one_node(op, {"a": a}), {"a": a})


@pytest.mark.parametrize("op", ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"])
def test_comparisons(op):
    a = RNG.integers(-2, 3, size=(3, 4)).astype(np.float32)
    b = RNG.integers(-2, 3, size=(4,)).astype(np.float32)
    check(one_node(op, {"a": a, "b": b}), {"a": a, "b": b})


@pytest.mark.parametrize("op", ["And", "Or", "Xor", "Equal"])
def test_logical(op):
    a = RNG.integers(0, 2, size=(3, 4)).astype(bool)
    b = RNG.integers(0, 2, size=(1, 4)).astype(bool)
    check(one_node(op, {"a": a, "b": b}), {"a": a, "b": b})


def test_not_and_where():
    c = RNG.integers(0, 2, size=(3, 4)).astype(bool)
    a, b = f32(3, 4), f32(4)
    nodes = [helper.make_node("Not", ["c"], ["nc"]), helper.make_node("Where", ["nc", "a", "b"], ["y"])]
    check(make_model(nodes, {"c": c, "a": a, "b": b}, ["y"]), {"c": c, "a": a, "b": b})


def test_prelu():
    x = f32(2, 3, 4, 4)
    slope = f32(3, 1, 1, low=0, high=0.5)
    check(one_node("PRelu", {"x": x}, initializers={"slope": slope}), {"x": x})


@pytest.mark.parametrize(
    "src,to",
    [(np.float32, TP.INT32), (np.float32, TP.INT64), (np.int64, TP.FLOAT), (np.float32, TP.FLOAT16),
     (np.float32, TP.BOOL), (np.bool_, TP.FLOAT), (np.float32, TP.DOUBLE), (np.float32, TP.FLOAT)],
)
def test_cast(src, to):
    x = (f32(3, 5, low=-10, high=10)).astype(src)
    check(one_node("Cast", {"x": x}, to=to), {"x": x}, rtol=1e-3, atol=1e-3)


def test_cast_like():
    x = RNG.integers(-5, 5, size=(4,)).astype(np.int64)
    like = f32(2)
    check(one_node("CastLike", {"x": x, "like": like}, opset=15), {"x": x, "like": like})


@pytest.mark.parametrize(
    "opset,min_,max_",
    [(7, -0.5, 0.5), (7, None, 0.5), (11, -0.5, 0.5), (11, None, 0.5), (11, -0.5, None), (13, None, None)],
)
def test_clip_opsets(opset, min_, max_):
    x = f32(3, 7)
    if opset < 11:
        attrs = {k: v for k, v in (("min", min_), ("max", max_)) if v is not None}
        model = one_node("Clip", {"x": x}, opset=opset, **attrs)
    else:
        inits = {}
        names = ["x", "lo" if min_ is not None else "", "hi" if max_ is not None else ""]
        if min_ is not None:
            inits["lo"] = np.array(min_, np.float32)
        if max_ is not None:
            inits["hi"] = np.array(max_, np.float32)
        while names[-1] == "":
            names.pop()
        node = helper.make_node("Clip", names, ["y"])
        model = make_model([node], {"x": x}, ["y"], inits, opset)
    check(model, {"x": x})


def test_clip_int_with_tensor_bounds():
    x = RNG.integers(-10, 10, size=(5, 3)).astype(np.int32)
    lo = np.array(-3, np.int32)
    check(one_node("Clip", {"x": x, "lo": lo}, opset=13), {"x": x, "lo": lo})


def test_identity_and_dropout_are_identity():
    x = f32(3, 4)
    nodes = [
        helper.make_node("Identity", ["x"], ["i"]),
        helper.make_node("Dropout", ["i"], ["d"], ratio=0.3),
        helper.make_node("Relu", ["d"], ["y"]),
    ]
    g = check(make_model(nodes, {"x": x}, ["y"], opset=10), {"x": x})
    assert ops_of(g) == {"relu"}


@pytest.mark.parametrize("opset", [7, 12, 13])
def test_dropout_unused_mask_ok(opset):
    x = f32(3, 4)
    nodes = [helper.make_node("Dropout", ["x"], ["d", "mask"]), helper.make_node("Relu", ["d"], ["y"])]
    check(make_model(nodes, {"x": x}, ["y"], opset=opset), {"x": x})


@pytest.mark.parametrize("opset", [12, 13])
def test_dropout_mask_is_all_true_in_inference(opset):
    x = f32(3, 4)
    nodes = [helper.make_node("Dropout", ["x"], ["d", "mask"], name="drop")]
    check(make_model(nodes, {"x": x}, ["d", "mask"], opset=opset), {"x": x}, compiled=False)


def test_dropout_mask_before_opset10_has_the_input_type():
    # (onnxruntime returns an all-false mask at opset 10; the ONNX reference implementation, all true)
    graph = helper.make_graph(
        [helper.make_node("Dropout", ["x"], ["d", "mask"])],
        "g",
        [helper.make_tensor_value_info("x", TP.FLOAT, [3])],
        [helper.make_tensor_value_info("d", TP.FLOAT, [3]), helper.make_tensor_value_info("mask", TP.FLOAT, [3])],
    )
    g = from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 7)], ir_version=10))
    x = f32(3)
    assert_close(graphc.run_graph(g, x)[1], np.ones(3, np.float32))


def test_dropout_training_mode():
    x = f32(3, 4)
    consts = {"ratio": np.array(0.0, np.float32), "training": np.array(True)}
    nodes = [helper.make_node("Dropout", ["x", "ratio", "training"], ["d", "mask"], name="drop")]
    g = from_onnx(make_model(nodes, {"x": x}, ["d", "mask"], consts, opset=13))  # ratio 0: nothing dropped
    d, mask = graphc.run_graph(g, x)
    assert_close(d, x)
    assert mask.dtype == np.bool_ and mask.all()
    consts["ratio"] = np.array(0.25, np.float32)
    with pytest.raises(FrontendError, match=r"'drop' \(Dropout, opset 13\): training_mode=true with ratio 0.25 drops at random"):
        from_onnx(make_model(nodes, {"x": x}, ["d", "mask"], consts, opset=13))


# ---------------------------------------------------------------------------------------
# linear algebra, conv, pooling, normalization
# ---------------------------------------------------------------------------------------
def test_matmul():
    a, b = f32(2, 5, 8), f32(8, 3)
    check(one_node("MatMul", {"a": a, "b": b}), {"a": a, "b": b})
    a2, w = f32(4, 8), f32(8, 6)
    check(one_node("MatMul", {"a": a2}, initializers={"w": w}), {"a": a2})


@pytest.mark.parametrize(
    "trans_a,trans_b,alpha,beta,c_shape",
    [(0, 1, 1.0, 1.0, (6,)), (0, 0, 1.0, 1.0, (4, 6)), (1, 0, 0.5, 2.0, (1, 6)), (1, 1, 1.0, 1.0, None), (0, 1, 2.0, 0.0, (6,)), (0, 0, 1.0, 0.5, ())],
)
def test_gemm(trans_a, trans_b, alpha, beta, c_shape):
    a = f32(8, 4) if trans_a else f32(4, 8)
    inits = {"b": f32(6, 8) if trans_b else f32(8, 6)}
    if c_shape is not None:
        inits["c"] = f32(*c_shape)
    model = one_node("Gemm", {"a": a}, initializers=inits, opset=13, transA=trans_a, transB=trans_b, alpha=alpha, beta=beta)
    g = check(model, {"a": a})
    assert "linear" in ops_of(g)
    assert {n.outputs[0].name for n in g.const_nodes()} >= set(inits) - ({"c"} if beta == 0 else set())


def test_gemm_opset9_and_input_b():
    a, b = f32(3, 5), f32(4, 5)
    check(one_node("Gemm", {"a": a, "b": b}, initializers={"c": f32(4)}, opset=9, transB=1), {"a": a, "b": b})


@pytest.mark.parametrize(
    "attrs,x_shape,w_shape,bias",
    [
        ({"pads": [1, 1, 1, 1]}, (2, 3, 9, 9), (8, 3, 3, 3), True),
        ({"strides": [2, 2], "pads": [0, 1, 2, 1]}, (1, 4, 10, 11), (6, 4, 3, 3), False),
        ({"dilations": [2, 2]}, (1, 2, 9, 9), (4, 2, 3, 3), True),
        ({"group": 2, "pads": [1, 1, 1, 1]}, (1, 4, 6, 6), (6, 2, 3, 3), True),
        ({"group": 4}, (1, 4, 6, 6), (4, 1, 3, 3), False),
        ({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, (1, 3, 8, 7), (4, 3, 4, 3), True),
        ({"auto_pad": "SAME_LOWER", "strides": [2, 2]}, (1, 3, 8, 7), (4, 3, 4, 3), True),
        ({"auto_pad": "VALID", "strides": [2, 1]}, (1, 3, 8, 7), (4, 3, 3, 3), False),
        ({"pads": [1, 2], "strides": [2]}, (2, 3, 11), (5, 3, 3), True),
        ({"auto_pad": "SAME_UPPER"}, (2, 3, 11), (5, 3, 4), False),
    ],
    ids=["pad1", "stride2-asym", "dilation", "groups", "depthwise", "same-upper", "same-lower", "valid", "conv1d", "conv1d-same"],
)
def test_conv(attrs, x_shape, w_shape, bias):
    x = f32(*x_shape)
    inits = {"w": f32(*w_shape)}
    if bias:
        inits["b"] = f32(w_shape[0])
    g = check(one_node("Conv", {"x": x}, initializers=inits, opset=11, **attrs), {"x": x})
    assert "conv2d" in ops_of(g)
    # parameters keep their names (not folded into anonymous reshaped copies)
    assert {n.outputs[0].name for n in g.const_nodes()} >= set(inits)


@pytest.mark.parametrize(
    "attrs,x_shape,opset",
    [
        ({"kernel_shape": [2, 2], "strides": [2, 2]}, (2, 3, 8, 8), 11),
        ({"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, (1, 2, 9, 9), 11),
        ({"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, (1, 2, 10, 10), 11),
        ({"kernel_shape": [2, 2], "dilations": [2, 2]}, (1, 2, 7, 7), 11),
        ({"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}, (1, 2, 7, 8), 11),
        ({"kernel_shape": [2, 2], "strides": [2, 2]}, (1, 2, 6, 6), 7),
        ({"kernel_shape": [3], "strides": [2], "pads": [1, 1]}, (2, 3, 9), 13),
        ({"kernel_shape": [3, 3], "pads": [0, 2, 2, 0]}, (1, 2, 5, 6), 11),
        ({"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1, "pads": [1, 1, 1, 1]}, (1, 2, 10, 10), 11),
    ],
    ids=["2x2", "pad", "ceil", "dilation", "same-upper", "opset7", "pool1d", "wide-pad", "ceil-pad"],
)
def test_max_pool(attrs, x_shape, opset):
    x = f32(*x_shape)
    g = check(one_node("MaxPool", {"x": x}, opset=opset, **attrs), {"x": x})
    assert "max_pool2d" in ops_of(g)


@pytest.mark.parametrize(
    "attrs,x_shape",
    [
        ({"kernel_shape": [2, 2], "strides": [2, 2]}, (2, 3, 8, 8)),
        ({"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, (1, 2, 9, 9)),
        ({"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1}, (1, 2, 9, 9)),
        ({"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, (1, 2, 10, 10)),
        ({"kernel_shape": [3], "strides": [1], "pads": [1, 1]}, (1, 2, 9)),
        ({"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1, "count_include_pad": 1}, (1, 2, 10, 10)),
        ({"kernel_shape": [3, 3], "pads": [0, 0, 2, 2], "count_include_pad": 1}, (1, 2, 5, 5)),
        ({"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER", "count_include_pad": 1}, (1, 2, 7, 7)),
    ],
    ids=["2x2", "pad-exclude", "pad-include", "ceil", "pool1d", "ceil-pad-include", "wide-pad-include", "same-upper"],
)
def test_avg_pool(attrs, x_shape):
    x = f32(*x_shape)
    g = check(one_node("AveragePool", {"x": x}, opset=11, **attrs), {"x": x})
    assert "avg_pool2d" in ops_of(g)


def test_avg_pool_wide_pad_excluding_pad():
    x = f32(1, 2, 5, 5)  # wider than graphc's avg_pool2d takes: a window sum over a constant count (onnx_ops/conv_pool.py)
    check(one_node("AveragePool", {"x": x}, opset=11, kernel_shape=[3, 3], pads=[0, 0, 2, 2]), {"x": x})


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pools(op):
    x = f32(2, 3, 5, 6)
    check(one_node(op, {"x": x}), {"x": x})


@pytest.mark.parametrize("opset", [7, 9, 15])
def test_batch_norm(opset):
    x = f32(2, 4, 5, 5)
    inits = {"s": f32(4), "b": f32(4), "m": f32(4), "v": f32(4, low=0.5, high=2)}
    g = check(one_node("BatchNormalization", {"x": x}, initializers=inits, opset=opset, epsilon=1e-3), {"x": x})
    assert "batch_norm" in ops_of(g)


def test_batch_norm_training_mode_is_an_error():
    x = f32(2, 4, 5, 5)
    inits = {"s": f32(4), "b": f32(4), "m": f32(4), "v": f32(4, low=0.5, high=2)}
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"], training_mode=1)
    with pytest.raises(FrontendError, match="training_mode"):
        from_onnx(make_model([node], {"x": x}, ["y", "rm", "rv"], inits, opset=15))


@pytest.mark.parametrize("axis,bias", [(-1, True), (1, True), (-1, False)])
def test_layer_norm_opset17(axis, bias):
    x = f32(2, 3, 8)
    norm = x.shape[axis % 3 :]
    inits = {"s": f32(*norm)}
    if bias:
        inits["b"] = f32(*norm)
    g = check(one_node("LayerNormalization", {"x": x}, initializers=inits, axis=axis, epsilon=1e-5), {"x": x})
    assert "layer_norm" in ops_of(g)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("opset,axis", [(11, 1), (11, -1), (11, 0), (13, 1), (13, -1)])
def test_softmax_opsets(op, opset, axis):
    """opset < 13 flattens the input to 2-D at `axis`; opset 13+ normalizes along one axis."""
    x = f32(2, 3, 4, low=-3, high=3)
    check(one_node(op, {"x": x}, opset=opset, axis=axis), {"x": x})


def test_softmax_default_axis_differs_across_opsets():
    x = f32(2, 3, 4)
    old = from_onnx(one_node("Softmax", {"x": x}, opset=11))
    new = from_onnx(one_node("Softmax", {"x": x}, opset=13))
    assert not np.allclose(graphc.run_graph(old, x)[0], graphc.run_graph(new, x)[0])


# ---------------------------------------------------------------------------------------
# reductions
# ---------------------------------------------------------------------------------------
def _reduce_model(op, x, axes, keepdims, opset, noop=None, axes_as_input=False):
    attrs = {"keepdims": keepdims}
    if noop is not None:
        attrs["noop_with_empty_axes"] = noop
    inits = {}
    names = ["x"]
    if axes is not None:
        if axes_as_input:
            inits["axes"] = np.array(axes, np.int64)
            names.append("axes")
        else:
            attrs["axes"] = axes
    node = helper.make_node(op, names, ["y"], **attrs)
    return make_model([node], {"x": x}, ["y"], inits, opset)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin"])
@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("axes,keepdims", [([1], 1), ([0, -1], 0), (None, 1), (None, 0)])
def test_reduce_opsets(op, opset, axes, keepdims):
    x = f32(3, 4, 5)
    as_input = opset >= (13 if op == "ReduceSum" else 18)
    check(_reduce_model(op, x, axes, keepdims, opset, axes_as_input=as_input), {"x": x}, compiled=axes == [1])


@pytest.mark.parametrize("op,opset", [("ReduceSum", 13), ("ReduceMean", 18), ("ReduceMax", 18)])
def test_reduce_noop_with_empty_axes(op, opset):
    x = f32(3, 4)
    g = check(_reduce_model(op, x, None, 1, opset, noop=1), {"x": x}, compiled=False)
    assert not g.compute_nodes()
    check(_reduce_model(op, x, None, 1, opset, noop=0), {"x": x}, compiled=False)


@pytest.mark.parametrize("op", ["ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp"])
@pytest.mark.parametrize("opset", [13, 18])
def test_reduce_compositions(op, opset):
    x = f32(3, 4, 5, low=0.1, high=2)
    check(_reduce_model(op, x, [1], 0, opset, axes_as_input=opset >= 18), {"x": x})


# ---------------------------------------------------------------------------------------
# shapes and data movement
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [[0, -1], [-1, 4], [2, 0, 2, 2], [24], [1, 2, 3, 4]])
def test_reshape(shape):
    x = f32(2, 3, 4)
    g = check(one_node("Reshape", {"x": x}, initializers={"shape": np.array(shape, np.int64)}), {"x": x})
    assert "shape" not in ops_of(g)


def test_reshape_allowzero_opset14():
    x = f32(2, 3, 4)
    check(one_node("Reshape", {"x": x}, initializers={"shape": np.array([4, 0, 2], np.int64)}, opset=14), {"x": x})
    m = one_node("Reshape", {"x": x}, initializers={"shape": np.array([6, 4], np.int64)}, opset=14, allowzero=1)
    check(m, {"x": x})


def test_reshape_with_non_constant_shape_is_an_error():
    x = f32(2, 3)
    s = np.array([3, 2], np.int64)
    model = one_node("Reshape", {"x": x, "s": s})
    with pytest.raises(FrontendError, match=r"reshape_node.*Reshape.*input 1 \(shape\) 's'.*constant"):
        from_onnx(model)


@pytest.mark.parametrize("axis", [0, 1, 2, -1, 3])
def test_flatten(axis):
    x = f32(2, 3, 4)
    check(one_node("Flatten", {"x": x}, opset=13, axis=axis), {"x": x})


@pytest.mark.parametrize("perm", [None, [1, 0, 2], [2, 0, 1]])
def test_transpose(perm):
    x = f32(2, 3, 4)
    attrs = {} if perm is None else {"perm": perm}
    check(one_node("Transpose", {"x": x}, **attrs), {"x": x})


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("axes", [[1], [-1, 1], None])
def test_squeeze_opsets(opset, axes):
    x = f32(2, 1, 3, 1)
    if axes is None:
        model = one_node("Squeeze", {"x": x}, opset=opset)
    elif opset >= 13:
        model = one_node("Squeeze", {"x": x}, initializers={"axes": np.array(axes, np.int64)}, opset=opset)
    else:
        model = one_node("Squeeze", {"x": x}, opset=opset, axes=axes)
    check(model, {"x": x})


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("axes", [[0], [1, -1], [0, 3]])
def test_unsqueeze_opsets(opset, axes):
    x = f32(2, 3)
    if opset >= 13:
        model = one_node("Unsqueeze", {"x": x}, initializers={"axes": np.array(axes, np.int64)}, opset=opset)
    else:
        model = one_node("Unsqueeze", {"x": x}, opset=opset, axes=axes)
    check(model, {"x": x})


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat(axis):
    a, b = f32(2, 3, 4), f32(2, 3, 4)
    c = f32(2, 3, 4)
    check(one_node("Concat", {"a": a, "b": b}, initializers={"c": c}, axis=axis), {"a": a, "b": b})


@pytest.mark.parametrize(
    "opset,split,n,axis",
    [(11, [2, 5], 2, 1), (11, None, 3, -1), (13, [1, 2, 3], 3, -1), (13, None, 2, 0), (18, "num_outputs", 4, 1), (18, "num_outputs", 3, 2), (18, [3, 4], 2, 1)],
)
def test_split_opsets(opset, split, n, axis):
    x = f32(4, 7, 6)
    outs = [f"y{i}" for i in range(n)]
    attrs, inits, names = {"axis": axis}, {}, ["x"]
    if split == "num_outputs":
        attrs["num_outputs"] = n
    elif split is not None and opset >= 13:
        inits["split"] = np.array(split, np.int64)
        names.append("split")
    elif split is not None:
        attrs["split"] = split
    node = helper.make_node("Split", names, outs, **attrs)
    g = check(make_model([node], {"x": x}, outs, inits, opset), {"x": x})
    assert len(g.outputs) == n


@pytest.mark.parametrize(
    "starts,ends,axes,steps",
    [
        ([1], [3], None, None),
        ([0, 1], [2, -1], [0, 2], None),
        ([-1], [-2**63], [1], [-1]),
        ([0, 1], [2**63 - 1, 2**63 - 1], [-1, 0], [2, 1]),
        ([3, 4], [0, 0], [1, 2], [-1, -2]),
        ([10], [20], [2], None),
    ],
    ids=["basic", "axes-neg-end", "reverse", "int64-max", "neg-steps", "empty"],
)
@pytest.mark.parametrize("opset", [9, 13])
def test_slice_opsets(starts, ends, axes, steps, opset):
    x = f32(3, 5, 6)
    if opset < 10:
        if steps is not None:
            pytest.skip("steps exist from opset 10")
        attrs = {"starts": starts, "ends": ends}
        if axes is not None:
            attrs["axes"] = axes
        model = one_node("Slice", {"x": x}, opset=opset, **attrs)
    else:
        inits = {"starts": np.array(starts, np.int64), "ends": np.array(ends, np.int64)}
        if axes is not None or steps is not None:
            inits["axes"] = np.array(axes if axes is not None else list(range(len(starts))), np.int64)
        if steps is not None:
            inits["steps"] = np.array(steps, np.int64)
        model = one_node("Slice", {"x": x}, initializers=inits, opset=opset)
    empty = any(d == 0 for d in run_ort(model, {"x": x})[0].shape)
    check(model, {"x": x}, compiled=not empty)


@pytest.mark.parametrize(
    "indices,axis", [([0, 2], 0), ([[1, 0], [2, -1]], 1), (1, 0), (-1, 2)], ids=["vector", "matrix-neg", "scalar", "scalar-last"]
)
def test_gather(indices, axis):
    x = f32(3, 4, 5)
    check(one_node("Gather", {"x": x}, initializers={"i": np.array(indices, np.int64)}, axis=axis), {"x": x})


def test_gather_runtime_indices():
    x = f32(10, 4)
    i = np.array([[3, 1], [0, 9]], np.int64)
    check(one_node("Gather", {"x": x, "i": i}, axis=0), {"x": x, "i": i})


@pytest.mark.parametrize("shape", [[2, 3, 4], [3, 1], [1, 1, 4], [4]])
def test_expand(shape):
    x = f32(3, 1)
    check(one_node("Expand", {"x": x}, initializers={"s": np.array(shape, np.int64)}), {"x": x})


def test_tile():
    x = f32(2, 3)
    check(one_node("Tile", {"x": x}, initializers={"r": np.array([2, 3], np.int64)}), {"x": x})


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_opset7_attributes(mode):
    x = f32(1, 2, 4, 5)
    attrs = {"pads": [0, 0, 1, 2, 0, 0, 2, 1], "mode": mode}
    if mode == "constant":
        attrs["value"] = 1.5
    check(one_node("Pad", {"x": x}, opset=7, **attrs), {"x": x})


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_opset11_inputs(mode):
    x = f32(2, 4, 5)
    inits = {"pads": np.array([0, 1, 2, 0, 2, 1], np.int64)}
    if mode == "constant":
        inits["v"] = np.array(-1.0, np.float32)
    check(one_node("Pad", {"x": x}, initializers=inits, opset=11, mode=mode), {"x": x})


def test_pad_opset18_axes_and_negative_pads():
    x = f32(2, 4, 5)
    inits = {"pads": np.array([1, -1, 2, -2], np.int64), "v": np.array(0.5, np.float32), "axes": np.array([2, 1], np.int64)}
    check(one_node("Pad", {"x": x}, initializers=inits, opset=18), {"x": x})


def test_pad_int_constant():
    x = RNG.integers(0, 9, size=(3, 3)).astype(np.int64)
    inits = {"pads": np.array([1, 0, 0, 2], np.int64), "v": np.array(7, np.int64)}
    check(one_node("Pad", {"x": x}, initializers=inits, opset=13), {"x": x})


# ---------------------------------------------------------------------------------------
# import-time constants: shape subgraphs fold away
# ---------------------------------------------------------------------------------------
def test_shape_gather_concat_reshape_folds():
    """The classic exporter pattern x.view(x.size(0), -1) becomes one reshape."""
    x = f32(4, 3, 2, 2)
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    inits = {"zero": np.array(0, np.int64), "ax0": np.array([0], np.int64), "minus1": np.array([-1], np.int64)}
    g = check(make_model(nodes, {"x": x}, ["y"], inits, opset=13), {"x": x})
    assert g.op_counts() == {"reshape": 1}


def test_range_constant_of_shape_size_fold():
    x = f32(2, 5)
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "one"], ["n"], axis=0),
        helper.make_node("Range", ["zero", "n", "step"], ["r"]),
        helper.make_node("Cast", ["r"], ["rf"], to=TP.FLOAT),
        helper.make_node("Size", ["x"], ["size"]),
        helper.make_node("Cast", ["size"], ["sizef"], to=TP.FLOAT),
        helper.make_node("ConstantOfShape", ["s"], ["ones"], value=numpy_helper.from_array(np.array([2.0], np.float32))),
        helper.make_node("Add", ["x", "rf"], ["a"]),
        helper.make_node("Mul", ["a", "ones"], ["b"]),
        helper.make_node("Sub", ["b", "sizef"], ["y"]),
    ]
    inits = {"one": np.array(1, np.int64), "zero": np.array(0, np.int64), "step": np.array(1, np.int64)}
    g = check(make_model(nodes, {"x": x}, ["y"], inits, opset=13), {"x": x})
    assert set(g.op_counts()) == {"add", "mul", "sub"}


def test_range_float_and_constant_of_shape_default():
    nodes = [
        helper.make_node("Range", ["a", "b", "c"], ["r"]),
        helper.make_node("ConstantOfShape", ["shape"], ["z"]),
        helper.make_node("Add", ["r", "z"], ["y"]),
    ]
    x = f32(3)
    inits = {"a": np.array(1.0, np.float32), "b": np.array(3.2, np.float32), "c": np.array(0.5, np.float32), "shape": np.array([5], np.int64)}
    nodes.append(helper.make_node("Add", ["x", "x"], ["y2"]))
    model = make_model(nodes, {"x": x}, ["y", "y2"], inits, opset=13)
    check(model, {"x": x})


def test_import_time_values_computed_from_parameters():
    """Float math on initializers is kept in the graph (parameters keep their names) but still
    readable where a converter needs a value at import time (Pad's constant_value here)."""
    x = f32(2, 3)
    nodes = [
        helper.make_node("Mul", ["a", "b"], ["v"]),
        helper.make_node("Pad", ["x", "pads", "v"], ["y"]),
        helper.make_node("Transpose", ["w"], ["wt"]),
        helper.make_node("Add", ["y", "wt"], ["z"]),
    ]
    inits = {"a": np.array(1.5, np.float32), "b": np.array(-2.0, np.float32), "pads": np.array([1, 0, 0, 1], np.int64), "w": f32(4, 3)}
    g = check(make_model(nodes, {"x": x}, ["z"], inits, opset=13), {"x": x})
    assert "w" in {n.outputs[0].name for n in g.const_nodes()}
    assert g.op_counts() == {"pad": 1, "transpose": 1, "add": 1}


def test_shape_start_end_opset15():
    x = f32(2, 3, 4, 5)
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], start=1, end=-1),
        helper.make_node("Concat", ["m1", "s"], ["s2"], axis=0),
        helper.make_node("Reshape", ["x", "s2"], ["y"]),
    ]
    g = check(make_model(nodes, {"x": x}, ["y"], {"m1": np.array([-1], np.int64)}, opset=15), {"x": x})
    assert g.op_counts() == {"reshape": 1}
    assert g.outputs[0].shape == (10, 3, 4)


@pytest.mark.parametrize(
    "attr,value",
    [
        ("value", numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3))),
        ("value_float", 2.5),
        ("value_floats", [1.0, 2.0, 3.0]),
        ("value_int", 3),
        ("value_ints", [1, 2, 3]),
        ("sparse_value", helper.make_sparse_tensor(
            numpy_helper.from_array(np.array([5.0, 6.0], np.float32), "v"), numpy_helper.from_array(np.array([1, 4], np.int64), "i"), [2, 3])),
    ],
)
def test_constant_attributes(attr, value):
    node = helper.make_node("Constant", [], ["c"], **{attr: value})
    model = make_model([node, helper.make_node("Identity", ["x"], ["y"])], {"x": f32(2)}, ["c", "y"], opset=13)
    if attr == "sparse_value":  # onnxruntime returns a SparseTensor object here
        expected = np.array([[0, 5, 0], [0, 6, 0]], np.float32)
    else:
        expected = run_ort(model, {"x": np.zeros(2, np.float32)})[0]
    g = from_onnx(model)
    assert_close(graphc.run_graph(g, np.zeros(2, np.float32))[0], expected)


# ---------------------------------------------------------------------------------------
# names, locations, initializers, loading
# ---------------------------------------------------------------------------------------
def test_names_locations_and_roundtrip():
    x = f32(2, 4)
    nodes = [
        helper.make_node("MatMul", ["input:0", "fc.weight"], ["h"], name="fc/MatMul"),
        helper.make_node("Add", ["h", "fc.bias"], ["h2"]),
        helper.make_node("Relu", ["h2"], ["logits"], name="act"),
    ]
    inits = {"fc.weight": f32(4, 3), "fc.bias": f32(3)}
    model = make_model(nodes, {"input:0": x}, ["logits"], inits)
    g = check(model, {"input:0": x})
    assert [v.name for v in g.inputs] == ["input:0"]
    assert g.output_names == ["logits"]
    assert {n.outputs[0].name for n in g.const_nodes()} == {"fc.weight", "fc.bias"}
    assert [n.loc for n in g.compute_nodes()] == ["fc/MatMul", "Add#1", "act"]
    assert_roundtrip(g)


def test_initializers_listed_as_inputs_stay_constants():
    x = f32(2, 4)
    w = f32(4, 3)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TP.FLOAT, [2, 4]), helper.make_tensor_value_info("w", TP.FLOAT, [4, 3])],
        [helper.make_tensor_value_info("y", TP.FLOAT, [2, 3])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=10)
    g = from_onnx(model)
    assert [v.name for v in g.inputs] == ["x"]
    assert_close(graphc.run_graph(g, x)[0], x @ w, rtol=1e-5)
    # named in input_shapes: the initializer becomes a real input
    g2 = from_onnx(model, input_shapes={"w": (4, 3)})
    assert [v.name for v in g2.inputs] == ["x", "w"]
    w2 = f32(4, 3)
    assert_close(graphc.run_graph(g2, x, w2)[0], x @ w2, rtol=1e-5)


def test_load_from_path_and_external_data(tmp_path):
    x = f32(2, 64)
    w = f32(64, 32)
    model = one_node("MatMul", {"x": x}, initializers={"w": w})
    path = tmp_path / "sub" / "model.onnx"
    path.parent.mkdir()
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    assert (path.parent / "weights.bin").exists()
    cwd = os.getcwd()
    os.chdir(tmp_path)  # external data is found relative to the model, not the working directory
    try:
        g = from_onnx(str(path))
    finally:
        os.chdir(cwd)
    assert_close(graphc.run_graph(g, x)[0], x @ w, rtol=1e-5)
    # graphc.compile accepts the path too
    out = graphc.compile(str(path), target="x86", log=lambda *a, **k: None).session().run(x)[0]
    assert_close(out, x @ w, rtol=1e-4, atol=1e-4)


def test_missing_external_data_is_an_error(tmp_path):
    model = one_node("MatMul", {"x": f32(2, 8)}, initializers={"w": f32(8, 8)})
    path = tmp_path / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="weights.bin", size_threshold=0)
    os.remove(tmp_path / "weights.bin")
    with pytest.raises(FrontendError, match="model.onnx.*external"):
        from_onnx(str(path))


def test_dynamic_input_dims_need_input_shapes():
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TP.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TP.FLOAT, ["batch", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=10)
    with pytest.raises(FrontendError, match=r"input 'x'.*dim 0 \('batch'\).*input_shapes"):
        from_onnx(model)
    g = from_onnx(model, input_shapes={"x": (5, 3)})
    assert g.inputs[0].shape == (5, 3)
    with pytest.raises(FrontendError, match="unknown input.*'?z'?"):
        from_onnx(model, input_shapes={"z": (5, 3)})
    with pytest.raises(FrontendError, match="rank"):
        from_onnx(model, input_shapes={"x": (5, 3, 1)})
    with pytest.raises(FrontendError, match="dim 1 = 4"):
        from_onnx(model, input_shapes={"x": (5, 4)})


def test_missing_dims_and_shape():
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TP.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TP.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=10)
    with pytest.raises(FrontendError, match=r"input 'x'.*dim 0 \(unknown\)"):
        from_onnx(model)
    assert from_onnx(model, input_shapes={"x": [2, 3]}).outputs[0].shape == (2, 3)


# ---------------------------------------------------------------------------------------
# error paths
# ---------------------------------------------------------------------------------------
def test_unsupported_ops_are_listed_all_at_once(tmp_path):
    nodes = [
        helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["sel"], name="nms_1"),
        helper.make_node("Foo", ["x"], ["f"], name="f0", domain="custom.domain"),
        helper.make_node("Foo", ["f"], ["g"], name="f1", domain="custom.domain"),
        helper.make_node("Relu", ["g"], ["y"]),
        helper.make_node("MaxRoiPool", ["x", "k"], ["v"], pooled_shape=[1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("boxes", TP.FLOAT, [1, 4, 4]), helper.make_tensor_value_info("scores", TP.FLOAT, [1, 1, 4]),
         helper.make_tensor_value_info("x", TP.FLOAT, [4]), helper.make_tensor_value_info("k", TP.INT64, [1])],
        [helper.make_tensor_value_info("y", TP.FLOAT, [4]), helper.make_tensor_value_info("sel", TP.INT64, [None, 3]),
         helper.make_tensor_value_info("v", TP.FLOAT, [None])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom.domain", 1)], ir_version=10)
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    with pytest.raises(UnsupportedOpError) as err:
        from_onnx(str(path))
    msg = str(err.value)
    assert msg.startswith(f"{path}: 3 unsupported ONNX op types: ")
    assert "NonMaxSuppression (ai.onnx opset 17; nodes nms_1)" in msg
    assert "Foo (custom.domain opset 1; nodes f0, f1)" in msg
    assert "MaxRoiPool (ai.onnx opset 17; nodes MaxRoiPool#4)" in msg
    assert "Relu" not in msg


def test_missing_file(tmp_path):
    path = tmp_path / "nope.onnx"
    with pytest.raises(FrontendError, match=f"{path}: no such file"):
        from_onnx(str(path))


def test_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(FrontendError, match=f"{path}: file is empty"):
        from_onnx(str(path))


def test_directory(tmp_path):
    with pytest.raises(FrontendError, match="directory"):
        from_onnx(str(tmp_path))


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.99])
def test_truncated_file(tmp_path, fraction):
    model = one_node("Conv", {"x": f32(1, 3, 8, 8)}, initializers={"w": f32(8, 3, 3, 3), "b": f32(8)}, opset=13, pads=[1, 1, 1, 1])
    data = model.SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(FrontendError, match=f"{path}: "):
        from_onnx(str(path))


def test_garbage_file(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\xff\xfe this is not a protobuf \x00\x01" * 10)
    with pytest.raises(FrontendError, match=f"{path}: not"):
        from_onnx(str(path))


def test_not_a_model_object():
    with pytest.raises(FrontendError, match="path or an onnx.ModelProto"):
        from_onnx(42)


def test_opset_newer_than_onnx_knows_is_an_error():
    # (opsets 1-6 are supported: tests/frontends/test_onnx_legacy_opsets.py)
    newest = onnx.defs.onnx_opset_version()
    model = one_node("Relu", {"x": f32(2)})
    model.opset_import[0].version = newest + 1
    with pytest.raises(FrontendError, match=f"opset {newest + 1} is newer than the installed onnx package knows.*up to {newest}"):
        from_onnx(model)


def test_unsupported_dtype_is_an_error():
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TP.COMPLEX64, [3])],
        [helper.make_tensor_value_info("y", TP.COMPLEX64, [3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=10)
    with pytest.raises(FrontendError, match="input 'x'.*COMPLEX64 is not supported"):
        from_onnx(model)


def test_non_constant_slice_starts_names_node_and_input():
    x = f32(4, 4)
    starts = np.array([1], np.int64)
    node = helper.make_node("Slice", ["x", "starts", "ends"], ["y"], name="slicer")
    model = make_model([node], {"x": x, "starts": starts}, ["y"], {"ends": np.array([3], np.int64)}, opset=13)
    with pytest.raises(FrontendError, match=r"'slicer' \(Slice, opset 13\): input 1 \(starts\) 'starts' must be a constant"):
        from_onnx(model)


def test_invalid_model_fails_the_checker():
    graph = helper.make_graph(
        [helper.make_node("Relu", ["nowhere"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TP.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TP.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=10)
    with pytest.raises(FrontendError, match="invalid ONNX model"):
        from_onnx(model)


def test_type_errors_name_the_node():
    model = helper.make_model(
        helper.make_graph(
            [helper.make_node("Add", ["a", "b"], ["y"], name="bad_add")],
            "g",
            [helper.make_tensor_value_info("a", TP.FLOAT, [2, 3]), helper.make_tensor_value_info("b", TP.FLOAT, [4, 5])],
            [helper.make_tensor_value_info("y", TP.FLOAT, None)],
        ),
        opset_imports=[helper.make_opsetid("", 13)],
        ir_version=10,
    )
    with pytest.raises(FrontendError, match="bad_add.*Add.*broadcast"):
        from_onnx(model)


def test_supported_ops_table():
    ops = supported_ops()
    for op in ["Conv", "MaxPool", "Gemm", "Reshape", "Slice", "ReduceMean", "LayerNormalization", "Constant", "Range"]:
        assert op in ops


# ---------------------------------------------------------------------------------------
# torch exports: the seed models
# ---------------------------------------------------------------------------------------
torch = pytest.importorskip("torch")


class SeedCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(32, 64, 3, padding=1)
        self.fc = torch.nn.Linear(3136, 10)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


class SeedMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(784, 128)
        self.fc2 = torch.nn.Linear(128, 10)

    def forward(self, x):
        return torch.softmax(self.fc2(torch.relu(self.fc1(x))), dim=-1)


def _export(module, example, dynamo: bool, **kwargs):
    import warnings

    torch.manual_seed(0)
    module.eval()
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            prog = torch.onnx.export(module, (example,), dynamo=True, input_names=["x"], output_names=["y"], verbose=False, **kwargs)
            return prog.model_proto
        torch.onnx.export(module, (example,), f, dynamo=False, input_names=["x"], output_names=["y"], **kwargs)
    return onnx.load_from_string(f.getvalue())


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_torch_seed_mlp(dynamo):
    torch.manual_seed(0)
    x = torch.randn(64, 784)
    model = _export(SeedMLP(), x, dynamo)
    g = check(model, {"x": x.numpy()})
    assert g.inputs[0].shape == (64, 784) and g.outputs[0].shape == (64, 10)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_torch_seed_cnn(dynamo):
    torch.manual_seed(0)
    x = torch.randn(4, 1, 28, 28)
    model = _export(SeedCNN(), x, dynamo)
    g = check(model, {"x": x.numpy()}, rtol=1e-4, atol=1e-4)
    counts = g.op_counts()
    assert counts.get("conv2d") == 2 and counts.get("max_pool2d") == 2


def test_torch_export_dynamic_batch_with_input_shapes():
    torch.manual_seed(0)
    x = torch.randn(4, 1, 28, 28)
    model = _export(SeedCNN(), x, False, dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    with pytest.raises(FrontendError, match="'batch'"):
        from_onnx(model)
    check(model, {"x": x.numpy()}, input_shapes={"x": (4, 1, 28, 28)})


def test_torch_initializers_as_inputs():
    torch.manual_seed(0)
    x = torch.randn(8, 784)
    model = _export(SeedMLP(), x, False, keep_initializers_as_inputs=True)
    assert len(model.graph.input) > 1
    g = check(model, {"x": x.numpy()})
    assert [v.name for v in g.inputs] == ["x"]


@pytest.mark.slow
def test_torch_seed_cnn_full_batch():
    torch.manual_seed(0)
    x = torch.randn(64, 1, 28, 28)
    check(_export(SeedCNN(), x, False), {"x": x.numpy()}, rtol=1e-4, atol=1e-4)


def test_local_functions_are_inlined_and_bytes_accepted():
    fn = helper.make_function(
        "local.fns", "ScaledRelu", ["a"], ["b"],
        [helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Add", ["r", "r"], ["b"])],
        opset_imports=[helper.make_opsetid("", 17)],
    )
    x = f32(3, 4)
    graph = helper.make_graph(
        [helper.make_node("ScaledRelu", ["x"], ["y"], domain="local.fns", name="call")],
        "g",
        [helper.make_tensor_value_info("x", TP.FLOAT, [3, 4])],
        [helper.make_tensor_value_info("y", TP.FLOAT, [3, 4])],
    )
    model = helper.make_model(
        graph, functions=[fn], ir_version=10,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local.fns", 1)],
    )
    g = check(model, {"x": x})
    assert g.op_counts() == {"relu": 1, "add": 1}
    g2 = from_onnx(model.SerializeToString())
    assert_close(graphc.run_graph(g2, x)[0], 2 * np.maximum(x, 0))
