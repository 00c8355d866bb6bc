"""Transformer-block ONNX ops: Attention (opset 23+), RotaryEmbedding, SwiGLU, LinearAttention and
ai.onnx.preview's FlexAttention.

Attention maps onto graphc's ``scaled_dot_product_attention`` (one fusable record):
3-D inputs are split into heads, past keys/values concatenated, grouped-query heads
broadcast (q heads ``[Hkv, rep]`` against k/v heads ``[Hkv, 1]``: no repeat), and every
masking rule (attn_mask, offset-aligned causal frontier, sliding window, per-batch
padding from ``nonpad_kv_seqlen``) is folded into one mask: a bool "allowed" mask,
intersected, and the float attn_mask as an additive bias. Static rules become
constants at import time. Only when the node's ``qk_matmul_output`` is used is the
attention written out op by op, so that intermediate can be returned.
"""
from __future__ import annotations

import math

import numpy as np

from ... import dtypes
from ...tensor import Tensor
from ..onnx import NodeContext, converter, graphc_dtype
from ._common import cast_to
from ._compose import stack

_QK_MODES = (0, 1, 2, 3)  # raw (softcapped) scores, after softcap, plus the mask bias, softmax probabilities


# ---------------------------------------------------------------------------------------
# heads
# ---------------------------------------------------------------------------------------


def _split_heads(ctx: NodeContext, x: Tensor, heads, what: str) -> Tensor:
    """[B, S, H * D] -> [B, H, S, D]."""
    b, s, hidden = x.shape
    if not isinstance(heads, int) or heads <= 0 or hidden % heads:
        raise ctx.error(f"3-D {what} {list(x.shape)} needs a head count dividing its hidden size {hidden}, got {heads!r}")
    return ctx.op("transpose", ctx.op("reshape", x, shape=(b, s, heads, hidden // heads)), perm=(0, 2, 1, 3))


def _merge_heads(ctx: NodeContext, y: Tensor) -> Tensor:
    """[B, H, S, D] -> [B, S, H * D]."""
    b, h, s, d = y.shape
    return ctx.op("reshape", ctx.op("transpose", y, perm=(0, 2, 1, 3)), shape=(b, s, h * d))


def _group_mask_heads(ctx: NodeContext, t: Tensor, groups: int) -> Tensor:
    """A tensor broadcasting against [B, Hq, Sq, Sk], reshaped to broadcast against
    [B, Hkv, Hq / Hkv, Sq, Sk] (query head h*rep + r is head r of key/value group h)."""
    full = (1,) * (4 - t.ndim) + t.shape
    heads = full[1]
    grouped = (full[0], groups, heads // groups) if heads > 1 else (full[0], 1, 1)
    return ctx.op("reshape", t, shape=grouped + full[2:])


# ---------------------------------------------------------------------------------------
# masks
# ---------------------------------------------------------------------------------------


def _and(ctx: NodeContext, a: Tensor | None, b: Tensor | None) -> Tensor | None:
    if a is None or b is None:
        return a if b is None else b
    return ctx.op("logical_and", a, b)


def _attn_mask(ctx: NodeContext, mask: Tensor, total: int, dtype: str) -> tuple[Tensor | None, Tensor | None]:
    """(allowed, bias) of the attn_mask input, its key axis padded to `total` (padding is masked)."""
    if mask.dtype != "bool" and mask.dtype != dtype:
        raise ctx.error(f"attn_mask must be bool or {dtype} like Q, got {mask.dtype}")
    if mask.ndim == 0 or mask.ndim > 4 or mask.shape[-1] > total:
        raise ctx.error(f"attn_mask {list(mask.shape)} must have rank 1 to 4 and at most {total} keys")
    short = total - mask.shape[-1]
    if short:
        pads = [0] * (2 * mask.ndim)
        pads[-1] = short
        mask = ctx.op("pad", mask, pads=tuple(pads), value=0.0 if mask.dtype == "bool" else -math.inf)
    return (mask, None) if mask.dtype == "bool" else (None, mask)


def _frontier(ctx: NodeContext, sq: int, sk: int, offset: Tensor, causal: bool, left: int, right: int) -> Tensor | None:
    """bool: query i (absolute position offset + i) may see key j under the causal and window rules.

    `offset` is an i64 scalar, or [B, 1, 1, 1] per batch (external cache)."""
    rel = ctx.constant(np.arange(sk)[None, :] - np.arange(sq)[:, None])  # j - i
    allowed = None
    if causal:  # j <= offset + i
        allowed = ctx.op("less_equal", rel, offset)
    if left >= 0:  # offset + i - j <= left
        allowed = _and(ctx, allowed, ctx.op("greater_equal", rel, ctx.op("sub", offset, ctx.scalar(left, offset))))
    if right >= 0:  # j - (offset + i) <= right
        allowed = _and(ctx, allowed, ctx.op("less_equal", rel, ctx.op("add", offset, ctx.scalar(right, offset))))
    return allowed


class _Masking:
    """Everything that masks the [B, Hq, Sq, Sk] scores: `allowed` (bool) and `bias` (float), or neither.

    ``causal_top_left`` says the causal rule is graphc's own ``causal=True`` (offset 0, no other
    structural rule), which keeps it out of the mask tensor."""

    def __init__(self, ctx: NodeContext, q: Tensor, k: Tensor, past: int, nonpad: Tensor | None):
        sq, sk = q.shape[2], k.shape[2]
        causal = bool(ctx.attr("is_causal", 0))
        left, right = int(ctx.attr("left_window_size", -1)), int(ctx.attr("right_window_size", -1))
        self.allowed: Tensor | None = None
        self.bias: Tensor | None = None
        if ctx.has_input(3):
            self.allowed, self.bias = _attn_mask(ctx, ctx.input(3), sk, q.dtype)
        self.causal_top_left = causal and nonpad is None and past == 0 and left < 0 and right < 0
        if nonpad is not None:  # an external cache: keys at and after nonpad[b] are padding
            if nonpad.dtype != "i64" or nonpad.shape != (q.shape[0],):
                raise ctx.error(f"nonpad_kv_seqlen must be int64 [{q.shape[0]}] (one length per batch), got {nonpad.type}")
            lengths = ctx.op("reshape", nonpad, shape=(q.shape[0], 1, 1, 1))
            padding = ctx.op("less", ctx.constant(np.arange(sk, dtype=np.int64)), lengths)
            self.allowed = _and(ctx, self.allowed, padding)
            offset = ctx.op("sub", lengths, ctx.scalar(sq, lengths))  # the cached keys before the query block
        else:
            offset = ctx.constant(np.array(past, np.int64))
        if not self.causal_top_left:
            self.allowed = _and(ctx, self.allowed, _frontier(ctx, sq, sk, offset, causal, left, right))

    def mask(self, ctx: NodeContext, dtype: str) -> Tensor | None:
        """The one mask tensor for scaled_dot_product_attention computing in `dtype` (bool if
        there is no float bias)."""
        bias = None if self.bias is None else cast_to(ctx, self.bias, dtype)
        if bias is None or self.allowed is None:
            return self.allowed if bias is None else bias
        return ctx.op("where", self.allowed, bias, _constant(ctx, -np.inf, dtype))

    def additive(self, ctx: NodeContext, dtype: str, sq: int, sk: int) -> Tensor | None:
        """The mask as an additive `dtype` bias (0 where allowed, -inf where not), causal rule included."""
        allowed, bias = self.allowed, None if self.bias is None else cast_to(ctx, self.bias, dtype)
        if self.causal_top_left:
            allowed = _and(ctx, allowed, ctx.constant(np.tril(np.ones((sq, sk), bool))))
        if allowed is None:
            return bias
        return ctx.op("where", allowed, _constant(ctx, 0.0, dtype) if bias is None else bias, _constant(ctx, -np.inf, dtype))


def _constant(ctx: NodeContext, value: float, dtype: str) -> Tensor:
    return ctx.constant(np.array(value, dtypes.to_numpy(dtype)))


# ---------------------------------------------------------------------------------------
# Attention
# ---------------------------------------------------------------------------------------


def _qkv(ctx: NodeContext) -> tuple[Tensor, Tensor, Tensor, bool]:
    """Q, K, V as [B, H, S, D] and whether they came in as 3-D [B, S, H * D]."""
    q, k, v = ctx.input(0), ctx.input(1), ctx.input(2)
    if not (q.ndim == k.ndim == v.ndim and q.ndim in (3, 4)):
        raise ctx.error(f"Q, K and V must all be 3-D or all 4-D, got {list(q.shape)}, {list(k.shape)}, {list(v.shape)}")
    if not (dtypes.is_float(q.dtype) and q.dtype == k.dtype == v.dtype):
        raise ctx.error(f"Q, K and V must be floats of one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if q.ndim == 4:
        return q, k, v, False
    kv_heads = ctx.attr("kv_num_heads", None)
    q = _split_heads(ctx, q, ctx.attr("q_num_heads", None), "Q (q_num_heads)")
    return q, _split_heads(ctx, k, kv_heads, "K (kv_num_heads)"), _split_heads(ctx, v, kv_heads, "V (kv_num_heads)"), True


def _with_past(ctx: NodeContext, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, int]:
    """K and V with the past cache in front (the present outputs), and the past length."""
    if ctx.has_input(4) != ctx.has_input(5):
        raise ctx.error("past_key and past_value must be given together")
    if not ctx.has_input(4):
        return k, v, 0
    past_k, past_v = ctx.input(4), ctx.input(5)
    for name, past, now in (("past_key", past_k, k), ("past_value", past_v, v)):
        if past.ndim != 4 or past.shape[:2] != now.shape[:2] or past.shape[3] != now.shape[3] or past.dtype != now.dtype:
            raise ctx.error(f"{name} {past.type} does not fit the [batch, kv heads, past, head size] cache of {now.type}")
    return ctx.op("concat", past_k, k, axis=2), ctx.op("concat", past_v, v, axis=2), past_k.shape[2]


def _compute_dtype(ctx: NodeContext, dtype: str) -> str:
    """The type the attention computes in: at least f32 (16-bit scores and softmax sums lose
    about 3 digits), or softmax_precision where that is wider still. The result is cast back."""
    candidates = [dtype, "f32"]
    code = ctx.attr("softmax_precision", None)
    if code is not None:
        wanted = graphc_dtype(int(code), f"{ctx.importer.where}: {ctx.describe()}: softmax_precision")
        if not dtypes.is_float(wanted):
            raise ctx.error(f"softmax_precision must be a float type, got {wanted}")
        candidates.append(wanted)
    return max(candidates, key=lambda d: np.dtype(dtypes.to_numpy(d)).itemsize)


def _scale(ctx: NodeContext, head_size: int) -> float:
    scale = ctx.attr("scale", None)
    return 1.0 / math.sqrt(head_size) if scale is None else float(scale)


def _group_query_heads(ctx: NodeContext, q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Grouped-query attention without repeating k and v: [B, Hq, S, D] queries as [B, Hkv, Hq / Hkv, S, D]
    against keys and values [B, Hkv, 1, S, D] (query head h * rep + r reads key/value head h)."""
    batch, q_heads, sq, head_size = q.shape
    kv_heads = k.shape[1]
    if q_heads == kv_heads:
        return q, k, v
    if q_heads % kv_heads:
        raise ctx.error(f"{q_heads} query heads cannot be grouped over {kv_heads} key/value heads")
    q = ctx.op("reshape", q, shape=(batch, kv_heads, q_heads // kv_heads, sq, head_size))
    return q, ctx.op("unsqueeze", k, axes=(2,)), ctx.op("unsqueeze", v, axes=(2,))


def _ungroup(ctx: NodeContext, t: Tensor, q_heads: int) -> Tensor:
    """[B, Hkv, rep, S, X] back to [B, Hq, S, X] (4-D tensors pass through)."""
    return t if t.ndim == 4 else ctx.op("reshape", t, shape=(t.shape[0], q_heads, *t.shape[3:]))


def _scaled_scores(ctx: NodeContext, q: Tensor, k: Tensor, scale: float) -> Tensor:
    """q @ k^T * scale, with q and k each scaled by sqrt(scale) as ONNX specifies (against overflow)."""
    root = ctx.scalar(math.sqrt(scale), q)
    perm = tuple(range(k.ndim - 2)) + (k.ndim - 1, k.ndim - 2)
    return ctx.op("matmul", ctx.op("mul", q, root), ctx.op("transpose", ctx.op("mul", k, root), perm=perm))


def _explicit_attention(ctx: NodeContext, q, k, v, masking: _Masking, mode: int):
    """Attention op by op, returning (Y, qk_matmul_output) as the ONNX reference computes them:
    mode 0 and 1 give the (softcapped) scores, 2 adds the mask bias, 3 the probabilities."""
    scores = _scaled_scores(ctx, q, k, _scale(ctx, q.shape[-1]))
    softcap = float(ctx.attr("softcap", 0.0) or 0.0)
    if softcap > 0:
        scores = ctx.op("mul", ctx.op("tanh", ctx.op("div", scores, ctx.scalar(softcap, scores))), ctx.scalar(softcap, scores))
    qk = scores
    bias = masking.additive(ctx, q.dtype, q.shape[-2], k.shape[-2])
    if bias is not None:
        bias = _group_mask_heads(ctx, bias, k.shape[1]) if q.ndim == 5 else bias
        scores = ctx.op("add", scores, bias)
        if mode == 2:
            qk = scores
    if bias is None:
        probs = ctx.op("softmax", scores, axis=-1)
    else:  # rows with every key masked attend to nothing (softmax alone would give NaN)
        dead = ctx.op("equal", ctx.op("max", bias, axes=(-1,), keepdims=True), ctx.scalar(-np.inf, bias))
        zero = ctx.scalar(0, scores)
        probs = ctx.op("where", dead, zero, ctx.op("softmax", ctx.op("where", dead, zero, scores), axis=-1))
    if mode == 3:
        qk = probs
    return ctx.op("matmul", probs, v), qk


def _check_heads(ctx: NodeContext, q: Tensor, k: Tensor, v: Tensor) -> None:
    """Q [B, Hq, Sq, D], K [B, Hkv, Sk, D] and V [B, Hkv, Sk, Dv] fit together."""
    if q.ndim != 4 or k.shape[3] != q.shape[3] or k.shape[0] != q.shape[0] or v.ndim != 4 or v.shape[:3] != k.shape[:3]:
        raise ctx.error(f"Q {list(q.shape)}, K {list(k.shape)} and V {list(v.shape)} (as [batch, heads, seq, head size]) do not fit together")


@converter("Attention")
def _attention(ctx: NodeContext):
    q, k, v, three_d = _qkv(ctx)
    dtype = q.dtype
    if ctx.has_input(6) and ctx.has_input(4):
        raise ctx.error("nonpad_kv_seqlen cannot be combined with past_key / past_value")
    k, v, past = _with_past(ctx, k, v)
    present_k, present_v = k, v
    _check_heads(ctx, q, k, v)
    q_heads, head_size = q.shape[1], q.shape[3]
    mode = int(ctx.attr("qk_matmul_output_mode", 0) or 0)
    if mode not in _QK_MODES:
        raise ctx.error(f"qk_matmul_output_mode must be one of {_QK_MODES}, got {mode}")
    masking = _Masking(ctx, q, k, past, ctx.input(6) if ctx.has_input(6) else None)

    compute = _compute_dtype(ctx, dtype)
    q, k, v = _group_query_heads(ctx, *(cast_to(ctx, t, compute) for t in (q, k, v)))
    qk = None
    if ctx.output_used(3):
        y, qk = _explicit_attention(ctx, q, k, v, masking, mode)
        qk = cast_to(ctx, _ungroup(ctx, qk, q_heads), dtype)
    else:
        mask = masking.mask(ctx, compute)
        if mask is not None and q.ndim == 5:
            mask = _group_mask_heads(ctx, mask, k.shape[1])
        y = ctx.op(
            "scaled_dot_product_attention", q, k, v, *([] if mask is None else [mask]),
            scale=_scale(ctx, head_size), causal=masking.causal_top_left, softcap=float(ctx.attr("softcap", 0.0) or 0.0),
        )
    y = cast_to(ctx, _ungroup(ctx, y, q_heads), dtype)
    return (_merge_heads(ctx, y) if three_d else y), present_k, present_v, qk


# ---------------------------------------------------------------------------------------
# RotaryEmbedding, SwiGLU
# ---------------------------------------------------------------------------------------


def _last_axis_slice(ctx: NodeContext, x: Tensor, start: int, end: int, step: int = 1) -> Tensor:
    return ctx.op("slice", x, starts=(start,), ends=(end,), axes=(x.ndim - 1,), steps=(step,))


def _rotary_caches(ctx: NodeContext, batch: int, seq: int, half: int) -> tuple[Tensor, Tensor]:
    """cos and sin as [B, S, 1, rotary_dim / 2], read at position_ids when given."""
    caches = [ctx.input(1), ctx.input(2)]
    if ctx.has_input(3):
        ids = ctx.input(3)
        if ids.shape != (batch, seq) or ids.dtype not in ("i32", "i64"):
            raise ctx.error(f"position_ids must be int [{batch}, {seq}], got {ids.type}")
        for c in caches:
            if c.ndim != 2:
                raise ctx.error(f"with position_ids, cos_cache and sin_cache must be [max_position, {half}], got {list(c.shape)}")
        caches = [ctx.op("gather", c, ids, axis=0) for c in caches]
    for c in caches:
        if c.shape != (batch, seq, half):
            raise ctx.error(f"cos_cache and sin_cache must give [{batch}, {seq}, {half}] (rotary_embedding_dim / 2 per position), got {list(c.shape)}")
    return tuple(ctx.op("unsqueeze", c, axes=(2,)) for c in caches)


@converter("RotaryEmbedding")
def _rotary_embedding(ctx: NodeContext):
    x = ctx.input(0)
    if x.ndim == 4:  # [B, H, S, D] -> [B, S, H, D]
        xs = ctx.op("transpose", x, perm=(0, 2, 1, 3))
    elif x.ndim == 3:
        heads = int(ctx.attr("num_heads", 0) or 0)
        if heads <= 0 or x.shape[2] % heads:
            raise ctx.error(f"3-D input {list(x.shape)} needs num_heads dividing its hidden size, got {heads}")
        xs = ctx.op("reshape", x, shape=(*x.shape[:2], heads, x.shape[2] // heads))
    else:
        raise ctx.error(f"input must be [B, H, S, D] or [B, S, H * D], got {list(x.shape)}")
    batch, seq, _, head_size = xs.shape
    dim = int(ctx.attr("rotary_embedding_dim", 0) or 0) or head_size
    if dim % 2 or dim > head_size:
        raise ctx.error(f"rotary_embedding_dim {dim} must be even and at most the head size {head_size}")
    cos, sin = _rotary_caches(ctx, batch, seq, dim // 2)
    if ctx.attr("interleaved", 0):  # pairs (x[2i], x[2i+1])
        x1, x2 = _last_axis_slice(ctx, xs, 0, dim, 2), _last_axis_slice(ctx, xs, 1, dim, 2)
    else:  # pairs (x[i], x[i + dim/2])
        x1, x2 = _last_axis_slice(ctx, xs, 0, dim // 2), _last_axis_slice(ctx, xs, dim // 2, dim)
    real = ctx.op("sub", ctx.op("mul", cos, x1), ctx.op("mul", sin, x2))
    imag = ctx.op("add", ctx.op("mul", sin, x1), ctx.op("mul", cos, x2))
    if ctx.attr("interleaved", 0):
        rotated = ctx.op("reshape", stack(ctx, [real, imag], 4), shape=(*real.shape[:3], dim))
    else:
        rotated = ctx.op("concat", real, imag, axis=3)
    if dim < head_size:
        rotated = ctx.op("concat", rotated, _last_axis_slice(ctx, xs, dim, head_size), axis=3)
    if x.ndim == 4:
        return ctx.op("transpose", rotated, perm=(0, 2, 1, 3))
    return ctx.op("reshape", rotated, shape=x.shape)


@converter("SwiGLU")
def _swiglu(ctx: NodeContext):
    """Y = A * sigmoid(alpha * A) * B."""
    a, b = ctx.input(0), ctx.input(1)
    if a.shape != b.shape:
        raise ctx.error(f"A and B must have the same shape (no broadcasting), got {list(a.shape)} and {list(b.shape)}")
    alpha = float(ctx.attr("alpha", 1.0))
    gate = ctx.op("silu", a) if alpha == 1.0 else ctx.op("mul", a, ctx.op("sigmoid", ctx.op("mul", a, ctx.scalar(alpha, a))))
    return ctx.op("mul", gate, b)


# ---------------------------------------------------------------------------------------
# LinearAttention
# ---------------------------------------------------------------------------------------

_UPDATE_RULES = ("linear", "gated", "delta", "gated_delta")


def _per_step(ctx: NodeContext, t: Tensor, step: int) -> Tensor:
    """[B, H, T, d] -> [B, H, 1, d] at one time step."""
    return ctx.op("slice", t, starts=(step,), ends=(step + 1,), axes=(2,))


def _heads_of(ctx: NodeContext, t: Tensor, heads: int, what: str) -> Tensor:
    """A [B, T, H * d] input (or [B, T, H] / [B, T, 1] per head) as f32 [B, H, T, d]."""
    b, steps, packed = t.shape
    if packed % heads:
        raise ctx.error(f"{what} {list(t.shape)}: its last axis does not split into {heads} heads")
    split = ctx.op("reshape", cast_to(ctx, t, "f32"), shape=(b, steps, heads, packed // heads))
    return ctx.op("transpose", split, perm=(0, 2, 1, 3))


@converter("LinearAttention")
def _linear_attention(ctx: NodeContext):
    """The recurrence, unrolled over the (static) sequence length and computed in f32:
    S_t = decay_t * S_{t-1} + k_t (x) v'_t (v'_t = beta_t * (v_t - S^T k_t) for the delta rules);
    o_t = scale * q_t^T S_t, each key/value head's state read by its group of query heads."""
    rule = ctx.attr("update_rule", "gated_delta")
    if rule not in _UPDATE_RULES:
        raise ctx.error(f"update_rule must be one of {', '.join(_UPDATE_RULES)}, got {rule!r}")
    q, k, v = ctx.input(0), ctx.input(1), ctx.input(2)
    q_heads, kv_heads = int(ctx.attr("q_num_heads", 0) or 0), int(ctx.attr("kv_num_heads", 0) or 0)
    if kv_heads <= 0 or q_heads <= 0 or q_heads % kv_heads:
        raise ctx.error(f"q_num_heads ({q_heads}) must be a positive multiple of kv_num_heads ({kv_heads})")
    if not (q.ndim == k.ndim == v.ndim == 3):
        raise ctx.error(f"query, key and value must be [B, T, H * d], got {list(q.shape)}, {list(k.shape)}, {list(v.shape)}")
    gated, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    if gated != ctx.has_input(4) or delta != ctx.has_input(5):
        raise ctx.error(f"update_rule {rule!r} {'needs' if gated else 'takes no'} decay and {'needs' if delta else 'takes no'} beta")
    q4, k4, v4 = _heads_of(ctx, q, q_heads, "query"), _heads_of(ctx, k, kv_heads, "key"), _heads_of(ctx, v, kv_heads, "value")
    b, _, steps, d_k = q4.shape
    d_v = v4.shape[3]
    decay = _heads_of(ctx, ctx.input(4), kv_heads, "decay") if gated else None  # [B, Hkv, T, d_k or 1]
    beta = _heads_of(ctx, ctx.input(5), ctx.input(5).shape[2], "beta") if delta else None  # [B, Hkv or 1, T, 1]
    state_dtype = ctx.input(3).dtype if ctx.has_input(3) else q.dtype
    if ctx.has_input(3):
        past = ctx.input(3)
        if past.shape != (b, kv_heads, d_k, d_v):
            raise ctx.error(f"past_state must be [{b}, {kv_heads}, {d_k}, {d_v}], got {list(past.shape)}")
        state = cast_to(ctx, past, "f32")
    else:
        state = ctx.constant(np.zeros((b, kv_heads, d_k, d_v), np.float32))
    scale = float(ctx.attr("scale", 0.0) or 0.0) or 1.0 / math.sqrt(d_k)
    outputs = []
    for step in range(steps):
        k_t, v_t = _per_step(ctx, k4, step), _per_step(ctx, v4, step)  # [B, Hkv, 1, d]
        if gated:  # each key row of the state decays by exp(g_t)
            state = ctx.op("mul", state, ctx.op("transpose", ctx.op("exp", _per_step(ctx, decay, step)), perm=(0, 1, 3, 2)))
        if delta:
            retrieved = ctx.op("matmul", k_t, state)  # S^T k_t as [B, Hkv, 1, d_v]
            v_t = ctx.op("mul", _per_step(ctx, beta, step), ctx.op("sub", v_t, retrieved))
        state = ctx.op("add", state, ctx.op("mul", ctx.op("transpose", k_t, perm=(0, 1, 3, 2)), v_t))
        q_t = ctx.op("reshape", _per_step(ctx, q4, step), shape=(b, kv_heads, q_heads // kv_heads, d_k))
        outputs.append(ctx.op("reshape", ctx.op("matmul", q_t, state), shape=(b, q_heads, 1, d_v)))
    y = ctx.op("concat", *outputs, axis=2) if len(outputs) > 1 else outputs[0]
    y = ctx.op("mul", ctx.op("reshape", ctx.op("transpose", y, perm=(0, 2, 1, 3)), shape=(b, steps, q_heads * d_v)), ctx.scalar(scale, y))
    return cast_to(ctx, y, q.dtype), cast_to(ctx, state, state_dtype)


# ---------------------------------------------------------------------------------------
# FlexAttention (ai.onnx.preview)
# ---------------------------------------------------------------------------------------


@converter("FlexAttention", domain="ai.onnx.preview")
def _flex_attention(ctx: NodeContext):
    """softmax(score_mod(q @ k^T * scale)), modified by prob_mod, @ v; the modifier subgraphs are
    converted inline on the [B, Hq, L, S] scores / probabilities. Without them it is graphc's
    scaled_dot_product_attention."""
    q, k, v = ctx.input(0), ctx.input(1), ctx.input(2)
    if not (dtypes.is_float(q.dtype) and q.dtype == k.dtype == v.dtype and q.ndim == 4):
        raise ctx.error(f"Q, K and V must be rank-4 floats of one dtype, got {q.type}, {k.type}, {v.type}")
    _check_heads(ctx, q, k, v)
    code = ctx.attr("softmax_precision", None)
    if code is not None:
        compute = graphc_dtype(int(code), f"{ctx.importer.where}: {ctx.describe()}: softmax_precision")
    else:  # 16-bit inputs compute in f32
        compute = q.dtype if q.dtype in ("f32", "f64") else "f32"
    scale = _scale(ctx, q.shape[3])
    q_heads = q.shape[1]
    q, k, v = _group_query_heads(ctx, *(cast_to(ctx, t, compute) for t in (q, k, v)))
    if not (ctx.has_attr("score_mod") or ctx.has_attr("prob_mod")):
        return cast_to(ctx, _ungroup(ctx, ctx.op("scaled_dot_product_attention", q, k, v, scale=scale), q_heads), ctx.input(2).dtype)
    scores = _ungroup(ctx, _scaled_scores(ctx, q, k, scale), q_heads)
    if ctx.has_attr("score_mod"):
        (scores,) = ctx.subgraph("score_mod", [scores])
    probs = ctx.op("softmax", cast_to(ctx, scores, compute), axis=-1)
    if ctx.has_attr("prob_mod"):
        (probs,) = ctx.subgraph("prob_mod", [probs])
    if q.ndim == 5:  # back to the query-head groups
        probs = ctx.op("reshape", probs, shape=q.shape[:3] + probs.shape[2:])
    return cast_to(ctx, _ungroup(ctx, ctx.op("matmul", cast_to(ctx, probs, compute), v), q_heads), ctx.input(2).dtype)
