"""Attention fusion: one rule for every surface form, then one fused kernel per block.

After `canonicalize` (dropout gone, the scale moved onto the scores as one scalar
multiply, transposes composed), BERT, GPT-2, ``scaled_dot_product_attention``
decompositions and ONNX exports all read:

    s = (q @ kT) [* c]                        scores, kT = k with its last two axes swapped
    s = s + mask | where(keep, s, -big) | where(keep, s, -big) + mask     optional masking
    p = softmax(s, axis=-1), or where(isnan(p), 0, p) as ONNX exports guard masked rows
    o = p @ v

which becomes ``fused[attention](q, kT, v[, mask])`` whose body is one
scaled_dot_product_attention op (reading k as the transpose of kT): codegen lowers
it to a flash-style kernel (online softmax over key blocks) that never writes the
seq x seq score matrix to memory and reads keys in the kT layout q @ kT uses. A
constant lower-triangular `keep` mask, or a constant additive one (0 on and below the
diagonal, a masking value above), becomes ``causal=True``.
scaled_dot_product_attention ops that arrive as such (torch.export, the ONNX
Attention op) are wrapped the same way, with kT = transpose(k) computed outside
(where `canonicalize` composes it with the transposes that produced k).
"""
from __future__ import annotations

import numpy as np

from graphc import ops
from graphc.ir import Graph
from graphc.pattern import alt, const, op, var
from graphc.tensor import Tensor

from .fuse_attention_backward import fuse_attention_backward
from .fusion import fused_call
from .rules import RewriteReport, Rule, apply_rules

# where(keep, s, fill) with fill at least this negative means "masked out" (HF uses finfo.min)
MASK_FILL_MAX = -1e4

_SCORES = op("matmul", var("q"), var("kt"), name="qk")
_SCALED = alt(
    op("mul", _SCORES, const("scale", scalar=True), name="scaled"),
    op("div", _SCORES, const("divisor", scalar=True), name="scaled"),
    _SCORES,
)
_WHERE = op("where", var("keep"), _SCALED, const("fill", scalar=True), name="masked_where")
_MASKED = alt(
    op("add", _WHERE, var("mask"), name="masked_add"),
    op("add", _SCALED, var("mask"), name="masked_add"),
    _WHERE,
    _SCALED,
)
_PROBS = op("softmax", _MASKED, name="probs")
# exporters guard fully-masked rows (softmax of all -inf is NaN) with where(isnan(p), 0, p);
# the fused kernel already outputs zeros for such rows
_GUARDED = alt(op("where", op("isnan", _PROBS), const(scalar=True, pred=lambda a: float(a.reshape(-1)[0]) == 0.0), _PROBS), _PROBS)
PATTERN = op("matmul", _GUARDED, var("v"), name="pv")


def _check(m, ctx):
    q, kt, v = m["q"], m["kt"], m["v"]
    if min(q.type.rank, kt.type.rank, v.type.rank) < 2:
        return "1-d operands: not an attention block"
    if m.node("probs").attrs["axis"] not in (-1, m.node("probs").outputs[0].type.rank - 1):
        return f"softmax over axis {m.node('probs').attrs['axis']}, not over the keys (last axis)"
    if q.shape[-1] != kt.shape[-2] or kt.shape[-1] != v.shape[-2]:
        return "operand shapes do not line up as q @ kT and probs @ v"
    fill = m.get("fill")
    if fill is not None and not m.scalar("fill") <= MASK_FILL_MAX:
        return f"where() fills with {m.scalar('fill')}, not a masking value (<= {MASK_FILL_MAX:g})"
    if m.get("keep") is not None and m["keep"].dtype != "bool":
        return "where() condition is not boolean"
    return ctx.only_feeds(m)


def _const_square(v, sq: int, sk: int) -> np.ndarray | None:
    """v's constant value as an (sq, sk) array when it is one broadcast over every batch."""
    if not v.is_const:
        return None
    arr = np.asarray(v.node.data)
    return arr.reshape(sq, sk) if arr.shape[-2:] == (sq, sk) and arr.size == sq * sk else None


def _is_causal(keep, sq: int, sk: int) -> bool:
    """keep is a constant lower-triangular (top-left aligned) boolean mask, broadcast over batches."""
    arr = _const_square(keep, sq, sk)
    return arr is not None and bool(np.array_equal(arr, np.tril(np.ones((sq, sk), dtype=bool))))


def _is_additive_causal(mask, sq: int, sk: int) -> bool:
    """mask is a constant additive causal mask (GPT-2's ONNX export: 0 on and below the diagonal,
    finfo.min above), broadcast over batches. As causal=True the kernel skips the key blocks past
    the diagonal and reads no mask: GPT-2's s128 attention kernel ran 1.15-1.26x faster."""
    arr = _const_square(mask, sq, sk)
    if arr is None or arr.dtype.kind != "f":
        return False
    tril = np.tril(np.ones((sq, sk), dtype=bool))
    return bool(np.all(arr[tril] == 0) and np.all(arr[~tril] <= MASK_FILL_MAX))


def _swap_last(t: Tensor) -> Tensor:
    perm = list(range(t.ndim))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    return ops.transpose(t, perm=tuple(perm))


def attention_group(b, q, kt, v, mask, scale, causal, softcap: float = 0.0, loc: str | None = None):
    """fused[attention](q, kT, v[, mask]): the one form codegen's attention kernels take."""
    inputs = [q, kt, v] + ([mask] if mask is not None else [])

    def body(q_, kt_, v_, *mask_):
        k = _swap_last(kt_)
        return ops.scaled_dot_product_attention(q_, k, v_, *mask_, scale=scale, causal=causal, softcap=softcap, _loc=loc)

    return fused_call(b, "attention", inputs, body, loc=loc)[0]


def _rewrite(b, m):
    q, kt = m["q"], m["kt"]
    scale = m.scalar("scale") if m.get("scale") is not None else 1.0
    if m.get("divisor") is not None:
        scale = 1.0 / m.scalar("divisor")
    sq, sk = q.shape[-2], kt.shape[-1]
    mask, keep, causal = m.get("mask"), m.get("keep"), False
    if keep is not None and mask is None and _is_causal(keep, sq, sk):
        causal, keep = True, None
    if mask is not None and keep is None and _is_additive_causal(mask, sq, sk):
        causal, mask = True, None
    if keep is not None:
        # a boolean keep-mask alone stays boolean; combined with an additive mask it becomes additive
        if mask is None:
            mask = keep
        else:
            dt = q.type.np_dtype
            masked = ops.where(Tensor(keep), b.const(np.zeros((), dt)), b.const(np.asarray(m.scalar("fill"), dt)))
            mask = (masked + Tensor(mask)).value
    return attention_group(b, q, kt, m["v"], mask, scale, causal, loc=_first_loc(m))


def _wrap_existing(b, m):
    node = m.nodes[-1]
    q, k, v, *mask = node.inputs
    kt = _swap_last(Tensor(b.new(k))).value
    attrs = node.attrs
    return attention_group(
        b, b.new(q), kt, b.new(v), b.new(mask[0]) if mask else None, attrs["scale"], attrs["causal"], attrs["softcap"], node.loc
    )


def _first_loc(m) -> str | None:
    return next((n.loc for n in m.nodes if n.loc), None)


RULES = [
    Rule("fuse_attention", PATTERN, _rewrite, _check),
    Rule(
        "wrap_attention",
        op("scaled_dot_product_attention", var("q"), var("k"), var("v"), name="sdpa"),
        _wrap_existing,
    ),
    Rule(
        "wrap_attention",
        op("scaled_dot_product_attention", var("q"), var("k"), var("v"), var("mask"), name="sdpa"),
        _wrap_existing,
    ),
]


def fuse_attention(graph: Graph, report: RewriteReport | None = None) -> Graph:
    # the backward ops the attention gradient emits become their own groups too
    return fuse_attention_backward(apply_rules(graph, RULES, report))

