"""ONNX math, bitwise, dtype, indexing, linear algebra and signal ops, on tiny models built
with onnx.helper: the imported graph (interpreter and x86) against onnxruntime, or against
numpy / the ONNX reference evaluator where onnxruntime lacks the op or the dtype."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto as TP  # noqa: E402
from onnx import helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from graphc.errors import FrontendError, NonConstantInputError  # noqa: E402
from graphc.frontends.onnx import from_onnx  # noqa: E402
from tests.frontends.test_onnx_import import check, f32, make_model, one_node, ops_of  # noqa: E402

RNG = np.random.default_rng(7)
INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def ints(dtype, *shape, low=-50, high=50):
    info = np.iinfo(dtype)
    return RNG.integers(max(low, int(info.min)), min(high, int(info.max)), size=shape).astype(dtype)


def reference(model, inputs: dict) -> list[np.ndarray]:
    """Outputs of the ONNX reference evaluator (for ops or dtypes onnxruntime lacks)."""
    return [np.asarray(a) for a in ReferenceEvaluator(model).run(None, inputs)]


# ---------------------------------------------------------------------------------------
# unary math and activations
# ---------------------------------------------------------------------------------------
UNARY = [
    ("Floor", {}, -4, 4), ("Ceil", {}, -4, 4), ("Sign", {}, -2, 2),
    ("Sin", {}, -4, 4), ("Cos", {}, -4, 4), ("Tan", {}, -1.4, 1.4),
    ("Asin", {}, -0.99, 0.99), ("Acos", {}, -0.99, 0.99), ("Atan", {}, -5, 5),
    ("Sinh", {}, -5, 5), ("Cosh", {}, -5, 5), ("Asinh", {}, -5, 5), ("Acosh", {}, 1, 6), ("Atanh", {}, -0.99, 0.99),
    ("Softplus", {}, -90, 40), ("Mish", {}, -20, 10), ("Softsign", {}, -5, 5),
    ("Celu", {"alpha": 0.7}, -3, 3), ("Selu", {"alpha": 1.5, "gamma": 1.2}, -3, 3),
    ("ThresholdedRelu", {"alpha": 0.4}, -2, 2), ("Shrink", {"lambd": 0.7, "bias": 0.2}, -2, 2),
]


@pytest.mark.parametrize("op,attrs,low,high", UNARY, ids=[u[0] for u in UNARY])
def test_unary(op, attrs, low, high):
    x = f32(4, 6, low=low, high=high)
    check(one_node(op, {"x": x}, opset=22, **attrs), {"x": x}, rtol=1e-5, atol=1e-6)


def test_small_arguments_keep_their_relative_accuracy():
    """sinh, Softplus and Mish of tiny or very negative inputs, where exp(x) - 1 and log(1 + e) cancel."""
    x = np.array([1e-6, -3e-5, 2e-3, -0.3, 0.49, 0.51, -40.0, -80.0], np.float32)
    for op in ("Sinh", "Softplus"):
        check(one_node(op, {"x": x}, opset=22), {"x": x}, rtol=1e-5, atol=0)
    check(one_node("Mish", {"x": x}, opset=22), {"x": x}, rtol=1e-5, atol=1e-12)  # (graphc's tanh flushes below ~1e-9)


def test_round_halves_to_even_and_specials():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.4, -2.6, np.nan, np.inf, -np.inf, 1e30], np.float32)
    check(one_node("Round", {"x": x}, opset=22), {"x": x}, expected=[np.round(x)])


def test_swish_alpha():
    x = f32(3, 5, low=-5, high=5)
    check(one_node("Swish", {"x": x}, opset=24, alpha=0.6), {"x": x}, expected=[x / (1 + np.exp(-0.6 * x))], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("positive,negative", [(1, 1), (1, 0), (0, 1), (0, 0)])
def test_isinf_and_isnan(positive, negative):
    x = np.array([1.0, np.inf, -np.inf, np.nan, 0.0, -3.0], np.float32)
    check(one_node("IsInf", {"x": x}, opset=20, detect_positive=positive, detect_negative=negative), {"x": x})
    check(one_node("IsNaN", {"x": x}, opset=20), {"x": x})


def test_unary_float16_and_float64():
    fns = {"Asin": np.arcsin, "Atan": np.arctan, "Sinh": np.sinh, "Floor": np.floor}
    for dtype, tol in ((np.float16, 2e-3), (np.float64, 1e-12)):
        x = f32(3, 8, low=-0.9, high=0.9).astype(dtype)
        nodes = [helper.make_node(op, ["x"], [op]) for op in fns]
        expected = [fn(x.astype(np.float64)).astype(dtype) for fn in fns.values()]
        check(make_model(nodes, {"x": x}, list(fns), opset=22), {"x": x}, expected=expected, rtol=tol, atol=tol)


# ---------------------------------------------------------------------------------------
# Mod, bitwise ops, new integer dtypes
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", INT_DTYPES, ids=[np.dtype(d).name for d in INT_DTYPES])
@pytest.mark.parametrize("fmod", [0, 1])
def test_mod_integers(dtype, fmod):
    a = ints(dtype, 3, 5, low=-100, high=100)
    b = ints(dtype, 5, low=-7, high=8)
    b[b == 0] = 3
    check(one_node("Mod", {"a": a, "b": b}, opset=13, fmod=fmod), {"a": a, "b": b})


def test_mod_integer_zero_divisor_and_overflow_do_not_trap():
    """x % 0 and INT_MIN % -1 trap in hardware: graphc gives 0 (numpy's answer)."""
    a = np.array([7, -7, -128, -128], np.int8)
    b = np.array([0, 0, -1, 3], np.int8)
    for fmod in (0, 1):
        expected = (np.fmod if fmod else np.mod)(a, np.where(b == 0, 1, b)) * (b != 0)
        check(one_node("Mod", {"a": a, "b": b}, opset=13, fmod=fmod), {"a": a, "b": b}, expected=[expected.astype(np.int8)])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("fmod", [0, 1])
def test_mod_floats(dtype, fmod):
    a = np.array([-4.5, 7.0, 5.0, 4.0, -7.0, 0.0, -0.0, 1.0, -1.0, np.inf, 2.0, 3.0], dtype)
    b = np.array([2.0, -3.0, 8.0, -2.0, 3.0, 2.0, -2.0, np.inf, np.inf, 2.0, 0.0, np.nan], dtype)
    with np.errstate(all="ignore"):
        expected = (np.fmod if fmod else np.mod)(a, b)
    check(one_node("Mod", {"a": a, "b": b}, opset=13, fmod=fmod), {"a": a, "b": b}, expected=[expected])


@pytest.mark.parametrize("op", ["BitwiseAnd", "BitwiseOr", "BitwiseXor"])
def test_bitwise_binary(op):
    for dtype in (np.int16, np.uint32, np.uint64):
        a, b = ints(dtype, 3, 4, low=-999, high=999), ints(dtype, 4, low=-999, high=999)
        check(one_node(op, {"a": a, "b": b}, opset=18), {"a": a, "b": b})


def test_bitwise_not():
    for dtype in (np.int8, np.uint16, np.int64):
        x = ints(dtype, 3, 4, low=-999, high=999)
        check(one_node("BitwiseNot", {"x": x}, opset=18), {"x": x})


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
def test_bitshift(direction, dtype):
    x = ints(dtype, 2, 6, low=0, high=250)
    y = np.array([0, 1, 3, 7, 2, 5], dtype)
    check(one_node("BitShift", {"x": x, "y": y}, opset=11, direction=direction), {"x": x, "y": y})


def test_bitshift_signed_and_out_of_range_amounts():
    """opset 28 semantics: arithmetic right shifts; amounts < 0 or >= the width shift everything out."""
    x = np.array([-100, 100, -1, 5, -7, 9], np.int16)
    y = np.array([2, 3, 16, 40, -1, 15], np.int16)
    right = np.where((y >= 0) & (y < 16), x >> np.clip(y, 0, 15), np.where(x < 0, -1, 0)).astype(np.int16)
    left = np.where((y >= 0) & (y < 16), x << np.clip(y, 0, 15), 0).astype(np.int16)
    for direction, expected in (("RIGHT", right), ("LEFT", left)):
        check(one_node("BitShift", {"x": x, "y": y}, opset=28, direction=direction), {"x": x, "y": y}, expected=[expected])


@pytest.mark.parametrize("src,to", [
    (np.int16, TP.UINT16), (np.uint16, TP.FLOAT), (np.uint32, TP.INT64), (np.uint64, TP.DOUBLE),
    (np.float32, TP.UINT32), (np.int64, TP.INT16), (np.uint8, TP.UINT64), (np.int16, TP.BOOL),
])
def test_cast_new_integer_dtypes(src, to):
    x = ints(src, 3, 5, low=0 if np.dtype(src).kind == "f" else -300, high=300) if np.dtype(src).kind != "f" else f32(3, 5, low=0, high=300)
    check(one_node("Cast", {"x": x}, to=to), {"x": x})


def test_new_dtypes_through_arithmetic():
    a, b = ints(np.uint64, 4, low=0, high=10**6), ints(np.uint64, 4, low=1, high=99)
    nodes = [helper.make_node("Mul", ["a", "b"], ["m"]), helper.make_node("Div", ["m", "b"], ["d"]), helper.make_node("Max", ["d", "a"], ["y"])]
    check(make_model(nodes, {"a": a, "b": b}, ["y"], opset=13), {"a": a, "b": b})


# ---------------------------------------------------------------------------------------
# scatters and gathers
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_elements(reduction):
    x = f32(3, 5)
    idx = np.array([[0, -1], [4, 2], [1, 1]], np.int64)  # a negative index; a duplicate in the last row
    if reduction == "none":
        idx[2, 1] = 3
    upd = f32(3, 2)
    check(one_node("ScatterElements", {"x": x, "idx": idx, "upd": upd}, opset=18, axis=1, reduction=reduction), {"x": x, "idx": idx, "upd": upd})


def test_scatter_deprecated_and_axis0():
    x, idx, upd = f32(4, 3), np.array([[1, 0, 3], [2, 3, 0]], np.int64), f32(2, 3)
    check(one_node("Scatter", {"x": x, "idx": idx, "upd": upd}, opset=9, axis=0), {"x": x, "idx": idx, "upd": upd})


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_nd(reduction):
    x = f32(4, 3, 2)
    idx = np.array([[0, 1], [3, -1], [2, 0]], np.int64)
    upd = f32(3, 2)
    check(one_node("ScatterND", {"x": x, "idx": idx, "upd": upd}, opset=18, reduction=reduction), {"x": x, "idx": idx, "upd": upd})


def test_scatter_nd_rows_int_data_duplicates_accumulate():
    x, idx, upd = ints(np.int32, 5, 3), np.array([[1], [4], [1]], np.int64), ints(np.int32, 3, 3)
    check(one_node("ScatterND", {"x": x, "idx": idx, "upd": upd}, opset=18, reduction="add"), {"x": x, "idx": idx, "upd": upd})


@pytest.mark.parametrize("mode", ["linear", "circular"])
def test_tensor_scatter(mode):
    past, update = f32(2, 3, 6, 4), f32(2, 3, 3, 4)
    write = np.array([1, 4 if mode == "circular" else 3], np.int64)
    model = one_node("TensorScatter", {"past": past, "update": update, "write": write}, opset=24, axis=2, mode=mode)
    inputs = {"past": past, "update": update, "write": write}
    check(model, inputs, expected=reference(model, inputs))


def test_gather_nd_and_gather_elements():
    x = f32(3, 4, 2)
    nd = np.array([[0, 3], [2, -1]], np.int64)
    el = np.array([[[1, 0], [0, 1], [1, 1], [0, 0]]], np.int64)
    nodes = [helper.make_node("GatherND", ["x", "nd"], ["a"]), helper.make_node("GatherElements", ["x", "el"], ["b"], axis=2)]
    check(make_model(nodes, {"x": x, "nd": nd, "el": el}, ["a", "b"], opset=13), {"x": x, "nd": nd, "el": el})


# ---------------------------------------------------------------------------------------
# ArgMax / ArgMin, TopK, cumulative ops, ReduceProd
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("keepdims,last", [(1, 0), (0, 1)])
def test_arg_reductions(op, keepdims, last):
    x = RNG.integers(-2, 3, size=(3, 5, 4)).astype(np.float32)  # many ties
    check(one_node(op, {"x": x}, opset=13, axis=1, keepdims=keepdims, select_last_index=last), {"x": x})
    i = ints(np.int32, 4, 6, low=-3, high=3)
    check(one_node(op, {"i": i}, opset=13, axis=-1, keepdims=keepdims, select_last_index=last), {"i": i})


@pytest.mark.parametrize("largest", [1, 0])
def test_topk(largest):
    x = RNG.integers(-3, 4, size=(3, 8)).astype(np.float32)  # ties: the lower index comes first
    g = check(one_node("TopK", {"x": x}, n_outputs=2, initializers={"k": np.array([4], np.int64)}, opset=11, largest=largest), {"x": x})
    assert "topk" in ops_of(g)
    y = ints(np.int64, 6, 3, low=-9, high=9)
    check(one_node("TopK", {"y": y}, n_outputs=2, initializers={"k": np.array([2], np.int64)}, opset=11, axis=0, largest=largest), {"y": y})


def test_topk_opset9_attribute_k():
    x = f32(4, 9)
    check(one_node("TopK", {"x": x}, n_outputs=2, opset=9, k=3), {"x": x})


@pytest.mark.parametrize("exclusive,reverse", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_cumsum(exclusive, reverse):
    x = f32(3, 6)
    check(one_node("CumSum", {"x": x}, initializers={"axis": np.array(1, np.int64)}, opset=14, exclusive=exclusive, reverse=reverse), {"x": x})
    i = ints(np.int32, 5, 2)
    check(one_node("CumSum", {"i": i}, initializers={"axis": np.array(0, np.int32)}, opset=14, exclusive=exclusive, reverse=reverse), {"i": i})


@pytest.mark.parametrize("exclusive,reverse", [(0, 0), (1, 1)])
def test_cumprod(exclusive, reverse):
    x = f32(2, 5, 3, low=0.5, high=1.5)
    model = one_node("CumProd", {"x": x}, initializers={"axis": np.array(-2, np.int64)}, opset=26, exclusive=exclusive, reverse=reverse)
    check(model, {"x": x}, expected=reference(model, {"x": x}), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opset", [13, 18])
def test_reduce_prod(opset):
    x = f32(2, 3, 4, low=0.5, high=1.5)
    if opset < 18:
        model = one_node("ReduceProd", {"x": x}, opset=opset, axes=[0, 2], keepdims=0)
    else:
        model = one_node("ReduceProd", {"x": x}, initializers={"axes": np.array([-1], np.int64)}, opset=opset)
    check(model, {"x": x})


# ---------------------------------------------------------------------------------------
# Einsum, Det
# ---------------------------------------------------------------------------------------
EINSUM = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ij->ji", [(3, 4)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("i,i", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("...ij,...jk", [(2, 1, 3, 4), (1, 5, 4, 2)]),  # ellipsis dims broadcast
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("abc,cd,ba->d", [(2, 3, 4), (4, 5), (3, 2)]),
    ("iij,jk->ik", [(3, 3, 2), (2, 4)]),
    ("ij->", [(3, 4)]),
]


@pytest.mark.parametrize("equation,shapes", EINSUM, ids=[e for e, _ in EINSUM])
def test_einsum(equation, shapes):
    arrays = [f32(*s).astype(np.float64) for s in shapes]
    inputs = {f"x{i}": a for i, a in enumerate(arrays)}
    check(one_node("Einsum", inputs, opset=12, equation=equation), inputs, expected=[np.einsum(equation, *arrays)], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape", [(2, 2), (3, 3), (2, 4, 4), (1, 5, 5)])
def test_det(shape):
    x = f32(*shape)
    check(one_node("Det", {"x": x}, opset=11), {"x": x}, rtol=1e-4, atol=1e-5)


def test_det_singular_and_permutation_matrices():
    x = np.stack([np.eye(3, dtype=np.float32)[[2, 0, 1]], np.ones((3, 3), np.float32), np.eye(3, dtype=np.float32)[[1, 0, 2]]])
    check(one_node("Det", {"x": x}, opset=11), {"x": x}, expected=[np.array([1.0, 0.0, -1.0], np.float32)])


# ---------------------------------------------------------------------------------------
# masks and encodings: Trilu, OneHot, EyeLike, ReverseSequence
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("upper", [0, 1])
@pytest.mark.parametrize("k", [None, 2, -1])
def test_trilu(upper, k):
    x = f32(2, 4, 5)
    init = {} if k is None else {"k": np.array(k, np.int64)}
    check(one_node("Trilu", {"x": x}, initializers=init, opset=14, upper=upper), {"x": x})


def test_one_hot():
    idx = np.array([[1, -1, 7], [0, 3, -9]], np.int64)  # negative wraps; out of range is all off
    values = np.array([-2.0, 5.0], np.float32)
    for axis in (-1, 0, 1):
        model = one_node("OneHot", {"idx": idx}, initializers={"depth": np.array(4, np.int64), "values": values}, opset=11, axis=axis)
        check(model, {"idx": idx})
    fidx = np.array([0.0, 2.7, 1.2], np.float32)  # float indices truncate
    node = helper.make_node("OneHot", ["fidx", "depth", "values"], ["y"])
    model = make_model([node], {"fidx": fidx, "values": values}, ["y"], initializers={"depth": np.array(3, np.int32)}, opset=11)
    expected = np.where(np.arange(3) == fidx.astype(np.int64)[:, None], values[1], values[0])  # the spec: indices cast to int64
    check(model, {"fidx": fidx, "values": values}, expected=[expected])


def test_eye_like():
    x = ints(np.int32, 3, 5)
    check(one_node("EyeLike", {"x": x}, opset=9, k=1), {"x": x})
    check(one_node("EyeLike", {"x": x}, opset=9, k=-2, dtype=TP.DOUBLE), {"x": x})


@pytest.mark.parametrize("batch_axis,time_axis", [(0, 1), (1, 0)])
def test_reverse_sequence(batch_axis, time_axis):
    x = f32(4, 5, 2) if batch_axis == 0 else f32(5, 4, 2)
    lens = np.array([1, 5, 3, 0], np.int64)
    lens[3] = 2
    model = one_node("ReverseSequence", {"x": x, "lens": lens}, opset=10, batch_axis=batch_axis, time_axis=time_axis)
    check(model, {"x": x, "lens": lens})


# ---------------------------------------------------------------------------------------
# value-dependent output shapes: NonZero, Compress, Unique
# ---------------------------------------------------------------------------------------
def test_nonzero_compress_unique_fold_constant_inputs():
    data = np.array([[2.0, 0.0, 1.0], [0.0, 3.0, 2.0]], np.float32)
    cond = np.array([True, False, True])
    x = f32(2, 3)
    nodes = [
        helper.make_node("NonZero", ["data"], ["nz"]),
        helper.make_node("Compress", ["x", "cond"], ["c"], axis=1),
        helper.make_node("Unique", ["data"], ["u", "first", "inverse", "counts"], sorted=0),
    ]
    model = make_model(nodes, {"x": x}, ["nz", "c", "u", "first", "inverse", "counts"], initializers={"data": data, "cond": cond}, opset=11)
    g = check(model, {"x": x})
    assert ops_of(g) == {"gather"}  # everything else folded to constants


def test_unique_sorted_along_an_axis():
    data = np.array([[1, 0, 0], [1, 0, 0], [2, 3, 4], [0, 1, 1]], np.int64)
    model = make_model(
        [helper.make_node("Unique", ["data"], ["u", "first", "inverse", "counts"], axis=0), helper.make_node("Identity", ["x"], ["y"])],
        {"x": f32(1)}, ["u", "first", "inverse", "counts", "y"], initializers={"data": data}, opset=11,
    )
    check(model, {"x": f32(1)}, compiled=False)


@pytest.mark.parametrize("op,inputs", [
    ("NonZero", {"x": np.ones((2, 2), np.float32)}),
    ("Compress", {"x": np.ones((3, 2), np.float32), "cond": np.array([True, False, True])}),
    ("Unique", {"x": np.ones(4, np.float32)}),
])
def test_value_dependent_shapes_need_known_values(op, inputs):
    with pytest.raises(NonConstantInputError, match=rf"{op}.*output shape depends on its values.*depends on graph input"):
        from_onnx(one_node(op, inputs, opset=11))


# ---------------------------------------------------------------------------------------
# signal processing
# ---------------------------------------------------------------------------------------
DFT_CASES = [  # (input shape, attributes, dft_length)
    ((2, 8, 1), {}, None),
    ((2, 7, 2), {}, None),
    ((2, 8, 2), {"inverse": 1}, None),
    ((2, 9, 1), {"onesided": 1}, None),
    ((2, 5, 2), {"inverse": 1, "onesided": 1}, None),
    ((2, 6, 1), {}, 10),  # zero-padded
    ((2, 6, 2), {"inverse": 1}, 4),  # cut
]


@pytest.mark.parametrize("shape,attrs,length", DFT_CASES)
def test_dft(shape, attrs, length):
    x = f32(*shape)
    init = {"axis": np.array(1, np.int64)}
    if length is not None:
        init = {"length": np.array(length, np.int64), **init}
    names = ["x", "length" if length is not None else "", "axis"]
    node = helper.make_node("DFT", names, ["y"], **attrs)
    model = make_model([node], {"x": x}, ["y"], initializers=init, opset=20)
    check(model, {"x": x}, expected=reference(model, {"x": x}), rtol=1e-4, atol=1e-5)


def test_dft_opset17_axis_attribute():
    x = f32(3, 6, 4, 1)
    model = one_node("DFT", {"x": x}, opset=17, axis=2)
    check(model, {"x": x}, expected=reference(model, {"x": x}), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("window", [False, True])
def test_stft(window):
    x = f32(2, 40, 1)
    init = {"step": np.array(6, np.int64)}
    names = ["x", "step"]
    if window:
        init["window"] = np.hanning(10).astype(np.float32)
        names.append("window")
    else:
        init["length"] = np.array(12, np.int64)
        names += ["", "length"]
    # (onesided=1 is the default; spelled out because onnx's shape inference misses that default)
    model = make_model([helper.make_node("STFT", names, ["y"], onesided=1)], {"x": x}, ["y"], initializers=init, opset=17)
    check(model, {"x": x}, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("op", ["HannWindow", "HammingWindow", "BlackmanWindow"])
@pytest.mark.parametrize("periodic", [1, 0])
def test_windows(op, periodic):
    model = make_model(
        [helper.make_node(op, ["n"], ["w"], periodic=periodic), helper.make_node("Mul", ["x", "w"], ["y"])],
        {"x": f32(10)}, ["y"], initializers={"n": np.array(10, np.int32)}, opset=17,
    )
    x = f32(10)
    check(model, {"x": x}, rtol=1e-6, atol=1e-6)


def test_mel_weight_matrix():
    init = {"bins": np.array(8, np.int64), "dft": np.array(64, np.int64), "rate": np.array(8000, np.int64),
            "low": np.array(100.0, np.float32), "high": np.array(3500.0, np.float32)}
    x = f32(3, 33)
    model = make_model(
        [helper.make_node("MelWeightMatrix", list(init), ["m"]), helper.make_node("MatMul", ["x", "m"], ["y"])],
        {"x": x}, ["y"], initializers=init, opset=17,
    )
    check(model, {"x": x}, expected=reference(model, {"x": x}), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------
# errors name the node and say what is wrong
# ---------------------------------------------------------------------------------------
def _unchecked_model(op_type, inputs: dict, initializers: dict, opset: int, n_outputs: int = 1, **attrs):
    """A one-node model without onnx's shape inference (which rejects some bad models first); output 0 is "y"."""
    outputs = ["y"] + [f"y{i}" for i in range(1, n_outputs)]
    node = helper.make_node(op_type, list(inputs) + list(initializers), outputs, name=f"{op_type.lower()}_node", **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(n, TP.FLOAT, list(a.shape)) for n, a in inputs.items()],
        [helper.make_tensor_value_info("y", TP.FLOAT, None)],
        initializer=[onnx.numpy_helper.from_array(a, n) for n, a in initializers.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_errors_are_readable():
    with pytest.raises(FrontendError, match=r"det_node.*Det.*7x7 matrices are not supported"):
        from_onnx(one_node("Det", {"x": f32(7, 7)}, opset=11))
    with pytest.raises(FrontendError, match=r"topk_node.*K \[9\] must be one value in \[1, 8\]"):
        from_onnx(_unchecked_model("TopK", {"x": f32(2, 8)}, {"k": np.array([9], np.int64)}, opset=11, n_outputs=2))
    with pytest.raises(FrontendError, match=r"einsum_node.*'ij'.*does not match an input of rank 3"):
        from_onnx(_unchecked_model("Einsum", {"x": f32(2, 3, 4)}, {}, opset=12, equation="ij->i"))
    with pytest.raises(FrontendError, match=r"scatterelements_node.*reduction must be one of"):
        x = f32(2, 3)
        from_onnx(_unchecked_model("ScatterElements", {"x": x}, {"i": np.zeros((2, 3), np.int64), "u": x}, opset=18, reduction="avg"))
