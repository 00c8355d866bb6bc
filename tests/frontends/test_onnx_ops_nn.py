"""ONNX neural-network ops (attention, normalization, convolution/pooling, resampling, losses) against
onnxruntime; where onnxruntime lacks the op (opset 27/28 ones, ai.onnx.preview's FlexAttention) or
departs from ONNX's reference (MaxUnpool's output_shape, bicubic GridSample at the border), against
the ONNX reference evaluator. Every case runs on graphc's interpreter and compiled for x86 (see `check`)."""
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
from tests.frontends.test_onnx_import import RNG, check, f32, make_model, one_node, ops_of  # noqa: E402


def reference(model, inputs: dict) -> list[np.ndarray]:
    return ReferenceEvaluator(model).run(None, inputs)


def node_model(op_type, inputs: dict, outputs, initializers=None, opset=17, input_names=None, **attrs):
    """One node whose input list may skip optional inputs ("" in `input_names`)."""
    names = input_names if input_names is not None else list(inputs) + list(initializers or {})
    node = helper.make_node(op_type, names, outputs, name=f"{op_type.lower()}_node", **attrs)
    return make_model([node], inputs, [o for o in outputs if o], initializers, opset)


def unchecked_model(op_type, inputs: dict, opset: int, **attrs):
    """A one-node model onnx's shape inference would reject (for error-path tests)."""
    node = helper.make_node(op_type, list(inputs), ["y"], name=f"{op_type.lower()}_node", **attrs)
    graph = helper.make_graph(
        [node], "bad", [helper.make_tensor_value_info(n, TP.FLOAT, list(a.shape)) for n, a in inputs.items()],
        [helper.make_tensor_value_info("y", TP.FLOAT, None)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def typed_outputs(model, elem_type):
    """Declare the outputs' element type where onnx's shape inference left them untyped (function ops it cannot infer)."""
    for o in model.graph.output:
        if not o.type.tensor_type.elem_type:
            o.type.tensor_type.elem_type = elem_type
    return model


# ---------------------------------------------------------------------------------------
# Attention
# ---------------------------------------------------------------------------------------
def _attention(q_shape, kv_shape, v_dim=None, *, mask=None, past=0, outputs=("Y",), opset=23, nonpad=None, dtype=np.float32, **attrs):
    """An Attention model: Q, K, V graph inputs (4-D [B, H, S, D] or 3-D [B, S, H*D]), then the optional ones."""
    v_shape = kv_shape[:-1] + (v_dim or kv_shape[-1],)
    inputs = {"Q": f32(*q_shape).astype(dtype), "K": f32(*kv_shape).astype(dtype), "V": f32(*v_shape).astype(dtype)}
    names = ["Q", "K", "V", "", "", "", ""]
    if mask is not None:
        inputs["mask"], names[3] = mask, "mask"
    if past:
        b, h = (q_shape[0], attrs["kv_num_heads"]) if len(q_shape) == 3 else kv_shape[:2]
        d, dv = (kv_shape[-1] // h, v_shape[-1] // h) if len(q_shape) == 3 else (kv_shape[-1], v_shape[-1])
        inputs["past_key"], inputs["past_value"] = f32(b, h, past, d).astype(dtype), f32(b, h, past, dv).astype(dtype)
        names[4:6] = ["past_key", "past_value"]
    if nonpad is not None:
        inputs["nonpad"], names[6] = np.array(nonpad, np.int64), "nonpad"
    while names[-1] == "":
        names.pop()
    return node_model("Attention", inputs, list(outputs), opset=opset, input_names=names, **attrs), inputs


ATTENTION = {
    "4d": dict(q_shape=(2, 3, 4, 8), kv_shape=(2, 3, 6, 8)),
    "4d-scale-dv": dict(q_shape=(2, 3, 4, 8), kv_shape=(2, 3, 6, 8), v_dim=5, scale=0.3),
    "3d-gqa-causal": dict(q_shape=(2, 4, 24), kv_shape=(2, 6, 8), is_causal=1, q_num_heads=6, kv_num_heads=2),
    "bool-mask-broadcast": dict(q_shape=(2, 2, 3, 4), kv_shape=(2, 2, 5, 4), mask=RNG.random((2, 1, 3, 5)) > 0.3),
    "softcap-gqa-float-mask": dict(q_shape=(1, 4, 3, 8), kv_shape=(1, 2, 5, 8), mask=f32(3, 5), softcap=1.5),
    "past-mask-present": dict(
        q_shape=(2, 2, 3, 4), kv_shape=(2, 2, 3, 4), past=2, mask=f32(3, 5), outputs=("Y", "present_key", "present_value")
    ),
    "past-causal-offset": dict(q_shape=(1, 2, 3, 4), kv_shape=(1, 2, 3, 4), past=2, is_causal=1, outputs=("Y", "pk", "pv"), opset=24),
    "fully-masked-row": dict(q_shape=(1, 1, 2, 4), kv_shape=(1, 1, 3, 4), mask=np.array([[True, False, True], [False, False, False]])),
    "fp16-causal": dict(q_shape=(1, 2, 4, 8), kv_shape=(1, 2, 4, 8), is_causal=1, dtype=np.float16),
}


@pytest.mark.parametrize("case", list(ATTENTION))
def test_attention(case):
    params = dict(ATTENTION[case])
    model, inputs = _attention(**params)
    tol = 2e-3 if params.get("dtype") == np.float16 else 1e-4
    g = check(model, inputs, rtol=tol, atol=tol)
    assert "scaled_dot_product_attention" in ops_of(g) and "softmax" not in ops_of(g)


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_attention_qk_matmul_output(mode):
    """The fourth output needs the scores: the attention is written out op by op (ONNX's reference
    returns the softcapped scores for mode 0 as well)."""
    mask = np.array([[True, True, False, True, False], [False] * 5, [True] * 5])  # a fully masked row
    model, inputs = _attention(
        (1, 4, 3, 8), (1, 2, 5, 8), mask=mask, softcap=2.0, outputs=("Y", "", "", "qk"), qk_matmul_output_mode=mode, opset=24
    )
    g = check(model, inputs, expected=reference(model, inputs))
    assert "scaled_dot_product_attention" not in ops_of(g)


def test_attention_external_cache_padding_and_causal_frontier():
    """nonpad_kv_seqlen is a runtime input: per-batch padding and an offset causal frontier (one
    batch with an empty frontier for its first query row); the mask's key axis is short (padded)."""
    mask = RNG.random((2, 1, 3, 5)) > 0.2
    model, inputs = _attention((2, 2, 3, 8), (2, 2, 6, 8), mask=mask, nonpad=[5, 2], is_causal=1, opset=24)
    check(model, inputs, expected=reference(model, inputs))


def test_attention_sliding_window_with_past():
    model, inputs = _attention((2, 3, 4, 8), (2, 3, 2, 8), past=3, is_causal=1, left_window_size=2, outputs=("Y", "pk", "pv"), opset=25)
    check(model, inputs, expected=reference(model, inputs))


def test_attention_softmax_precision():
    model, inputs = _attention(
        (1, 2, 3, 8), (1, 2, 4, 8), mask=RNG.random((3, 4)) > 0.3, dtype=np.float16, outputs=("Y", "", "", "qk"),
        qk_matmul_output_mode=3, softmax_precision=11, opset=24,
    )
    check(model, inputs, rtol=2e-3, atol=2e-3, expected=reference(model, inputs))


ERRORS = {
    "attention-3d-without-heads": (
        "Attention", {"Q": f32(1, 4, 24), "K": f32(1, 4, 24), "V": f32(1, 4, 24)}, 23, {"kv_num_heads": 2}, "3-D Q .*needs a head count",
    ),
    "linear-attention-without-decay": (
        "LinearAttention", {"q": f32(1, 2, 8), "k": f32(1, 2, 8), "v": f32(1, 2, 8)}, 27, {"q_num_heads": 2, "kv_num_heads": 2}, "gated_delta.*needs decay",
    ),
    "max-pool-3d-indices": ("MaxPool", {"x": f32(1, 1, 4, 4, 4)}, 12, {"kernel_shape": [2, 2, 2]}, "Indices output.*rank-5"),
    "conv-transpose-channels": ("ConvTranspose", {"x": f32(1, 3, 4, 4), "w": f32(2, 2, 3, 3)}, 17, {}, "does not fit 3 input channels"),
    "grid-sample-grid-shape": ("GridSample", {"x": f32(1, 2, 4, 4), "g": f32(1, 3, 3, 3)}, 22, {}, r"grid must be \[N, \*out, 2\]"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_name_the_node(case):
    op, inputs, opset, attrs, message = ERRORS[case]
    model = unchecked_model(op, inputs, opset, **attrs)
    if op in ("MaxPool", "LinearAttention"):  # a second output (MaxPool: the Indices, used)
        model.graph.node[0].output.append("second")
        model.graph.output.append(helper.make_tensor_value_info("second", TP.INT64 if op == "MaxPool" else TP.FLOAT, None))
    with pytest.raises(FrontendError, match=f"{op.lower()}_node.*{message}"):
        from_onnx(model)


# ---------------------------------------------------------------------------------------
# RotaryEmbedding, SwiGLU, LinearAttention, CausalConvWithState
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape,attrs,positions",
    [((2, 3, 4, 8), {}, True), ((2, 3, 4, 8), {"interleaved": 1}, True), ((2, 4, 12), {"num_heads": 2, "rotary_embedding_dim": 4}, False)],
    ids=["halves", "interleaved", "3d-partial"],
)
def test_rotary_embedding(shape, attrs, positions):
    batch, seq = shape[0], shape[2] if len(shape) == 4 else shape[1]
    half = (attrs.get("rotary_embedding_dim") or shape[-1]) // 2
    angles = f32(*((10, half) if positions else (batch, seq, half)), low=-3, high=3)
    inputs = {"x": f32(*shape), "cos": np.cos(angles), "sin": np.sin(angles)}
    if positions:
        inputs["pos"] = RNG.integers(0, 10, (batch, seq)).astype(np.int64)
    check(one_node("RotaryEmbedding", inputs, opset=23, **attrs), inputs)


@pytest.mark.parametrize("alpha", [1.0, 1.7])
def test_swiglu(alpha):
    inputs = {"a": f32(3, 5, low=-4, high=4), "b": f32(3, 5)}
    model = one_node("SwiGLU", inputs, opset=28, alpha=alpha)
    check(model, inputs, expected=reference(model, inputs))


@pytest.mark.parametrize(
    "rule,decay_per_key,past",
    [("linear", False, False), ("gated", True, True), ("delta", False, True), ("gated_delta", False, False)],
)
def test_linear_attention(rule, decay_per_key, past):
    b, t, hq, hkv, dk, dv = 2, 3, 4, 2, 4, 3
    key = f32(b, t, hkv, dk)
    inputs = {"q": f32(b, t, hq * dk), "k": (key / np.linalg.norm(key, axis=-1, keepdims=True)).reshape(b, t, hkv * dk), "v": f32(b, t, hkv * dv)}
    names = ["q", "k", "v", "", "", ""]
    if past:
        inputs["state"], names[3] = f32(b, hkv, dk, dv), "state"
    if rule in ("gated", "gated_delta"):
        inputs["decay"], names[4] = f32(b, t, hkv * dk if decay_per_key else hkv, low=-1, high=0), "decay"
    if rule in ("delta", "gated_delta"):
        inputs["beta"], names[5] = f32(b, t, hkv, low=0, high=1), "beta"
    while names[-1] == "":
        names.pop()
    model = node_model("LinearAttention", inputs, ["y", "present"], opset=27, input_names=names, update_rule=rule, q_num_heads=hq, kv_num_heads=hkv)
    check(model, inputs, expected=reference(model, inputs))


@pytest.mark.parametrize("past,activation", [(False, "none"), (True, "silu")])
def test_causal_conv_with_state(past, activation):
    inputs = {"x": f32(2, 3, 5), "w": f32(3, 1, 4), "bias": f32(3)}
    if past:
        inputs["state"] = f32(2, 3, 3)
    model = node_model("CausalConvWithState", inputs, ["y", "present"], opset=27, activation=activation)
    check(model, inputs, expected=reference(model, inputs))


# ---------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------
LOSSES = [
    ("NegativeLogLikelihoodLoss", (3, 5), {"reduction": "none"}, False),
    ("NegativeLogLikelihoodLoss", (3, 5, 2, 3), {"reduction": "mean", "ignore_index": 2}, True),
    ("NegativeLogLikelihoodLoss", (3, 5, 4), {"reduction": "sum", "ignore_index": -1}, False),
    ("SoftmaxCrossEntropyLoss", (4, 6), {"reduction": "mean"}, True),
    ("SoftmaxCrossEntropyLoss", (2, 5, 3), {"reduction": "mean", "ignore_index": 1}, False),
    ("SoftmaxCrossEntropyLoss", (2, 5, 3, 2), {"reduction": "none", "ignore_index": 0}, True),
]


@pytest.mark.parametrize("op,shape,attrs,weighted", LOSSES, ids=[f"{o[:3]}-{a['reduction']}-{len(s)}d" for o, s, a, _ in LOSSES])
def test_losses(op, shape, attrs, weighted):
    classes = shape[1]
    target = RNG.integers(0, classes, (shape[0],) + shape[2:]).astype(np.int64)
    if "ignore_index" in attrs:
        target.reshape(-1)[::3] = attrs["ignore_index"]
    inputs = {"x": f32(*shape, low=-3, high=0), "t": target}
    if weighted:
        inputs["w"] = f32(classes, low=0.2, high=2)
    outputs = ["loss", "log_prob"] if op == "SoftmaxCrossEntropyLoss" else ["loss"]
    check(node_model(op, inputs, outputs, opset=13, **attrs), inputs)


# ---------------------------------------------------------------------------------------
# normalization, Hardmax
# ---------------------------------------------------------------------------------------
def test_layer_norm_statistics_outputs():
    inputs = {"x": f32(2, 3, 4), "s": f32(3, 4), "b": f32(3, 4)}
    check(node_model("LayerNormalization", inputs, ["y", "mean", "inv_std"], axis=1, epsilon=1e-3), inputs)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_group_norm(dtype):
    inputs = {"x": f32(2, 6, 3, 2).astype(dtype), "s": f32(6).astype(dtype), "b": f32(6).astype(dtype)}
    model = typed_outputs(one_node("GroupNormalization", inputs, opset=21, num_groups=2, epsilon=1e-3), helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))
    check(model, inputs, rtol=2e-3, atol=2e-3)


def test_instance_norm():
    inputs = {"x": f32(2, 3, 4, 5), "s": f32(3), "b": f32(3)}
    check(one_node("InstanceNormalization", inputs, epsilon=1e-2), inputs)


def test_rms_norm():
    inputs = {"x": f32(2, 3, 8).astype(np.float16), "s": f32(3, 8).astype(np.float16)}
    check(one_node("RMSNormalization", inputs, opset=23, axis=-2), inputs, rtol=2e-3, atol=2e-3)


def test_mean_variance_norm():
    inputs = {"x": f32(2, 3, 4, 2)}
    check(one_node("MeanVarianceNormalization", inputs, axes=[0, 2]), inputs)


@pytest.mark.parametrize("p", [1, 2])
def test_lp_norm(p):
    x = f32(3, 4)
    x[1] = 0  # a zero norm gives zeros
    check(one_node("LpNormalization", {"x": x}, axis=1, p=p), {"x": x})


@pytest.mark.parametrize("size", [3, 5])
def test_lrn(size):
    x = f32(2, 6, 3, 3)
    check(one_node("LRN", {"x": x}, size=size, alpha=0.01, beta=0.6, bias=1.5), {"x": x})


@pytest.mark.parametrize("opset,axis", [(11, 1), (13, 1), (13, -1)])
def test_hardmax(opset, axis):
    x = RNG.integers(0, 3, (2, 3, 4)).astype(np.float32)  # ties: the first maximum wins
    check(one_node("Hardmax", {"x": x}, opset=opset, axis=axis), {"x": x})


# ---------------------------------------------------------------------------------------
# convolution and pooling
# ---------------------------------------------------------------------------------------
CONV_TRANSPOSE = {
    "basic": ((1, 2, 3, 3), (2, 3, 3, 3), {}),
    "stride-pads": ((1, 2, 4, 3), (2, 2, 3, 2), {"strides": [2, 3], "pads": [1, 0, 2, 1]}),
    "output-padding-dilation": ((2, 2, 3, 3), (2, 1, 2, 3), {"strides": [2, 2], "output_padding": [1, 0], "dilations": [2, 1]}),
    "groups": ((1, 4, 3, 3), (4, 3, 3, 3), {"group": 2, "strides": [2, 1]}),
    "output-shape": ((1, 1, 3, 3), (1, 2, 3, 3), {"strides": [3, 2], "output_shape": [10, 8]}),
    "same-lower": ((1, 1, 3, 4), (1, 2, 3, 3), {"strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    "1d": ((1, 2, 5), (2, 3, 3), {"strides": [2], "pads": [1, 2]}),
    "3d": ((1, 2, 3, 2, 3), (2, 2, 2, 3, 2), {"strides": [2, 1, 2], "pads": [1, 0, 0, 0, 1, 1], "group": 2}),
}


@pytest.mark.parametrize("case", list(CONV_TRANSPOSE))
def test_conv_transpose(case):
    x_shape, w_shape, attrs = CONV_TRANSPOSE[case]
    inputs = {"x": f32(*x_shape), "w": f32(*w_shape), "b": f32(w_shape[1] * attrs.get("group", 1))}
    check(one_node("ConvTranspose", inputs, **attrs), inputs)


def test_conv_3d():
    inputs = {"x": f32(1, 4, 5, 4, 6), "w": f32(6, 2, 3, 2, 3), "b": f32(6)}
    attrs = {"group": 2, "strides": [2, 1, 2], "pads": [1, 0, 1, 1, 1, 0], "dilations": [1, 2, 1]}
    check(one_node("Conv", inputs, **attrs), inputs)


POOLS = {
    "max-3d-ceil": ("MaxPool", (1, 2, 5, 6, 7), {"kernel_shape": [2, 3, 2], "strides": [2, 2, 2], "ceil_mode": 1}),
    "max-wide-pads-ceil": ("MaxPool", (1, 2, 7, 7), {"kernel_shape": [3, 3], "pads": [2, 2, 2, 0], "strides": [2, 2], "ceil_mode": 1}),
    "max-3d-dilated": ("MaxPool", (1, 1, 6, 5, 6), {"kernel_shape": [2, 2, 2], "dilations": [2, 1, 2], "pads": [1, 0, 1, 1, 1, 0]}),
    "avg-3d-excluding-pad": ("AveragePool", (1, 2, 5, 4, 6), {"kernel_shape": [3, 2, 3], "pads": [1, 1, 1, 1, 0, 1]}),
    "avg-dilated-ceil": ("AveragePool", (1, 2, 7, 7), {"kernel_shape": [2, 3], "dilations": [2, 2], "strides": [2, 1], "ceil_mode": 1}),
    "avg-dilated-counting-pad": (
        "AveragePool", (1, 1, 6, 6), {"kernel_shape": [2, 2], "dilations": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1},
    ),
    "lp1": ("LpPool", (1, 2, 5, 5), {"kernel_shape": [2, 2], "p": 1}),
    "lp2-pads": ("LpPool", (1, 2, 6, 6), {"kernel_shape": [3, 3], "pads": [2, 2, 2, 2]}),
    "lp3-dilated-1d": ("LpPool", (1, 2, 9), {"kernel_shape": [3], "dilations": [2], "strides": [2], "p": 3}),
}


@pytest.mark.parametrize("case", list(POOLS))
def test_pools(case):
    op, shape, attrs = POOLS[case]
    x = f32(*shape)
    check(one_node(op, {"x": x}, opset=19, **attrs), {"x": x})


@pytest.mark.parametrize(
    "shape,attrs",
    [((1, 2, 5, 5), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 2]}), ((2, 1, 4, 6), {"kernel_shape": [2, 2], "storage_order": 1}), ((1, 2, 7), {"kernel_shape": [3], "strides": [2]})],
    ids=["pads-strides", "column-major", "1d"],
)
def test_max_pool_indices(shape, attrs):
    x = RNG.permutation(np.prod(shape)).reshape(shape).astype(np.float32)  # distinct values: one maximum
    check(one_node("MaxPool", {"x": x}, n_outputs=2, opset=12, **attrs), {"x": x})


@pytest.mark.parametrize("with_shape", [False, True])
def test_max_unpool(with_shape):
    """Indices from a 2x2/2 max pool; an output_shape larger than the unpooled shape pads its end (ONNX's reference)."""
    x = f32(1, 2, 4, 4)
    pooled_idx = x.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 2, 2, 2, 4).argmax(-1)
    rows, cols = pooled_idx // 2 + 2 * np.arange(2)[:, None], pooled_idx % 2 + 2 * np.arange(2)[None, :]
    indices = (np.arange(2)[None, :, None, None] * 16 + rows * 4 + cols).astype(np.int64)
    inputs = {"x": f32(1, 2, 2, 2), "i": indices}
    initializers = {"shape": np.array([1, 2, 5, 6], np.int64)} if with_shape else None
    model = one_node("MaxUnpool", inputs, initializers=initializers, kernel_shape=[2, 2], strides=[2, 2])
    check(model, inputs, expected=reference(model, inputs))


@pytest.mark.parametrize(
    "image,block,attrs",
    [((5, 5), (2, 3), {"strides": [2, 1], "pads": [1, 0, 0, 1]}), ((4, 5), (2, 2), {"dilations": [1, 2]}), ((3, 4, 3), (1, 2, 2), {})],
    ids=["strides-pads", "dilations", "3d"],
)
def test_col2im(image, block, attrs):
    n = len(image)
    strides, dilations, pads = attrs.get("strides", [1] * n), attrs.get("dilations", [1] * n), attrs.get("pads", [0] * 2 * n)
    windows = [(i + pads[k] + pads[n + k] - (b - 1) * d - 1) // s + 1 for k, (i, b, s, d) in enumerate(zip(image, block, strides, dilations))]
    inputs = {"cols": f32(2, 3 * int(np.prod(block)), int(np.prod(windows)))}
    model = one_node("Col2Im", inputs, initializers={"image": np.array(image, np.int64), "block": np.array(block, np.int64)}, opset=18, **attrs)
    check(model, inputs, expected=reference(model, inputs))


def test_deform_conv():
    inputs = {"x": f32(1, 4, 5, 6), "w": f32(4, 2, 2, 3), "offset": f32(1, 2 * 2 * 6, 3, 2, low=-1.5, high=1.5), "b": f32(4), "mask": f32(1, 2 * 6, 3, 2, low=0, high=1)}
    attrs = {"group": 2, "offset_group": 2, "strides": [2, 2], "pads": [1, 0, 1, 1], "dilations": [1, 2]}
    check(one_node("DeformConv", inputs, opset=22, **attrs), inputs)


# ---------------------------------------------------------------------------------------
# resampling
# ---------------------------------------------------------------------------------------
RESIZE = {
    "nearest-half-pixel-round-ceil": ({"mode": "nearest", "nearest_mode": "round_prefer_ceil"}, None, [1, 1, 7, 5]),
    "nearest-asymmetric-floor-down": ({"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}, [1.0, 1.0, 0.6, 0.5], None),
    # (align_corners with sizes: for a scale whose output length is fractional, onnxruntime uses the rounded length, ONNX's reference the exact one)
    "linear-align-corners": ({"mode": "linear", "coordinate_transformation_mode": "align_corners"}, None, [2, 3, 8, 3]),
    "linear-pytorch-half-pixel": ({"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"}, None, [2, 3, 1, 7]),
    "linear-antialias-down": ({"mode": "linear", "antialias": 1}, [1.0, 1.0, 0.45, 0.6], None),
    "cubic-exclude-outside": ({"mode": "cubic", "cubic_coeff_a": -0.5, "exclude_outside": 1}, [1.0, 1.0, 1.7, 0.8], None),
    "cubic-antialias-down": ({"mode": "cubic", "antialias": 1}, None, [2, 3, 3, 2]),
    "crop-and-resize-extrapolation": (
        {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": 7.0}, None, [2, 3, 4, 3],
    ),
    "axes-not-larger": ({"mode": "nearest", "axes": [3, 2], "keep_aspect_ratio_policy": "not_larger"}, None, [9, 8]),
}


@pytest.mark.parametrize("case", list(RESIZE))
def test_resize(case):
    attrs, scales, sizes = RESIZE[case]
    x = f32(2, 3, 5, 6)
    inits, names = {}, ["x", "", "", ""]
    if attrs.get("coordinate_transformation_mode") == "tf_crop_and_resize":
        inits["roi"], names[1] = np.array([0, 0, 0.2, -0.1, 1, 1, 0.9, 1.2], np.float32), "roi"
    if scales is not None:
        inits["scales"], names[2] = np.array(scales, np.float32), "scales"
    if sizes is not None:
        inits["sizes"], names[3] = np.array(sizes, np.int64), "sizes"
    while names[-1] == "":
        names.pop()
    g = check(node_model("Resize", {"x": x}, ["y"], inits, opset=19, input_names=names, **attrs), {"x": x})
    assert ops_of(g) <= {"gather", "matmul", "transpose", "where"}


@pytest.mark.parametrize(
    "op,opset,mode,scales", [("Upsample", 9, "nearest", [1, 1, 2, 3]), ("Upsample", 9, "linear", [1, 1, 2.5, 1.5]), ("Resize", 10, "nearest", [1, 1, 0.5, 2])]
)
def test_upsample_and_resize_10(op, opset, mode, scales):
    x = f32(1, 2, 4, 4)
    check(one_node(op, {"x": x}, initializers={"scales": np.array(scales, np.float32)}, opset=opset, mode=mode), {"x": x})


GRID_SAMPLE = [
    ("linear", "zeros", 0, 2),
    ("nearest", "reflection", 0, 2),
    ("cubic", "reflection", 1, 2),
    ("cubic", "border", 0, 2),
    ("linear", "border", 1, 3),
]


@pytest.mark.parametrize("mode,padding,align,dims", GRID_SAMPLE, ids=[f"{m}-{p}-{a}-{d}d" for m, p, a, d in GRID_SAMPLE])
def test_grid_sample(mode, padding, align, dims):
    x = f32(2, 3, *([4, 5, 3][:dims]))
    grid = f32(2, *([3, 4, 2][:dims]), dims, low=-1.6, high=1.6)  # some samples outside the image
    inputs = {"x": x, "grid": grid}
    model = one_node("GridSample", inputs, opset=22, mode=mode, padding_mode=padding, align_corners=align)
    # onnxruntime clamps cubic taps differently from ONNX's reference at the border
    check(model, inputs, expected=reference(model, inputs) if (mode, padding) == ("cubic", "border") else None)


@pytest.mark.parametrize("size,align", [((2, 3, 4, 5), 0), ((2, 3, 4, 5), 1), ((1, 2, 3, 4, 2), 0)])
def test_affine_grid(size, align):
    n = len(size) - 2
    inputs = {"theta": f32(size[0], n, n + 1)}
    model = one_node("AffineGrid", inputs, initializers={"size": np.array(size, np.int64)}, opset=20, align_corners=align)
    check(model, inputs)


@pytest.mark.parametrize("mode,transform,ratio", [("avg", "half_pixel", 2), ("max", "output_half_pixel", 1), ("avg", "output_half_pixel", 0)])
def test_roi_align(mode, transform, ratio):
    # rois of one size (sampling_ratio 0 derives the samples per bin from it), partly outside the image
    rois = np.array([[0.5, 1.0, 4.0, 3.5], [2.0, 0.5, 5.5, 3.0], [-1.0, 4.5, 2.5, 7.0]], np.float32)
    inputs = {"x": f32(2, 3, 6, 7), "batch": np.array([1, 0, 1], np.int64)}
    model = node_model(
        "RoiAlign", inputs, ["y"], {"rois": rois}, opset=16, input_names=["x", "rois", "batch"],
        mode=mode, coordinate_transformation_mode=transform, output_height=2, output_width=3, sampling_ratio=ratio, spatial_scale=0.9,
    )
    check(model, inputs)


def test_roi_align_adaptive_sampling_needs_constant_rois():
    inputs = {"x": f32(1, 1, 6, 6), "rois": np.array([[0, 0, 4, 4]], np.float32), "batch": np.array([0], np.int64)}
    with pytest.raises(FrontendError, match="roialign_node.*rois.*must be a constant"):
        from_onnx(one_node("RoiAlign", inputs, opset=16, sampling_ratio=0))


# ---------------------------------------------------------------------------------------
# layout
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("op,mode", [("DepthToSpace", "DCR"), ("DepthToSpace", "CRD"), ("SpaceToDepth", "DCR")])
def test_depth_space(op, mode):
    x = f32(2, 8, 2, 4) if op == "DepthToSpace" else f32(2, 2, 4, 6)
    attrs = {"mode": mode} if op == "DepthToSpace" else {}
    check(one_node(op, {"x": x}, blocksize=2, **attrs), {"x": x})


@pytest.mark.parametrize("shape,axes", [([3, 8], [0, -1]), ([5, 5, 2], None)])
def test_center_crop_pad(shape, axes):
    x = f32(6, 5, 2)
    attrs = {"axes": axes} if axes else {}
    model = one_node("CenterCropPad", {"x": x}, initializers={"shape": np.array(shape, np.int64)}, opset=18, **attrs)
    check(model, {"x": x}, expected=reference(model, {"x": x}))


# ---------------------------------------------------------------------------------------
# FlexAttention (ai.onnx.preview)
# ---------------------------------------------------------------------------------------
def _modifier(name: str, op: str, value: float):
    """A score_mod / prob_mod body: (t) -> op(t, value)."""
    node = helper.make_node(op, ["t", "c"], ["out"])
    c = helper.make_tensor("c", TP.FLOAT, [], [value])
    t_type = helper.make_tensor_value_info("t", TP.FLOAT, None)
    return helper.make_graph([node], name, [t_type], [helper.make_tensor_value_info("out", TP.FLOAT, None)], initializer=[c])


@pytest.mark.parametrize("mods", [(), ("score_mod",), ("score_mod", "prob_mod")], ids=["plain", "score_mod", "both"])
def test_flex_attention(mods):
    inputs = {"Q": f32(2, 4, 3, 8), "K": f32(2, 2, 5, 8), "V": f32(2, 2, 5, 6)}  # grouped-query heads
    attrs = {"score_mod": _modifier("score", "Mul", 1.5), "prob_mod": _modifier("prob", "Pow", 2.0)}
    node = helper.make_node("FlexAttention", list(inputs), ["y"], name="flex_node", domain="ai.onnx.preview", **{m: attrs[m] for m in mods})
    graph = helper.make_graph(
        [node], "flex", [helper.make_tensor_value_info(n, TP.FLOAT, list(a.shape)) for n, a in inputs.items()],
        [helper.make_tensor_value_info("y", TP.FLOAT, [2, 4, 3, 6])],
    )
    opsets = [helper.make_opsetid("", 26), helper.make_opsetid("ai.onnx.preview", 1)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=10)
    g = check(model, inputs, expected=reference(model, inputs))
    assert ("scaled_dot_product_attention" in ops_of(g)) == (not mods)
