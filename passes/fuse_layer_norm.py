"""Layer-norm fusion: the mean/sub/var/rsqrt/mul/add decomposition becomes one layer_norm op
(one kernel: two reductions and the normalization in one pass over each row).

Matches the canonical form (after `canonicalize`: ``div(d, sqrt(v))`` became
``mul(d, rsqrt(v))`` and ``pow(d, 2)`` became ``d * d``):

    mu  = mean(x, axes=trailing, keepdims)        d = x - mu
    v   = mean(d * d, same axes, keepdims)   (or var(x, correction=0))
    y   = d * rsqrt(v + eps) [* w] [+ b]
"""
from __future__ import annotations

import numpy as np

from graphc import ops
from graphc.ir import Graph
from graphc.pattern import alt, const, op, var
from graphc.tensor import Tensor

from .rules import RewriteReport, Rule, apply_rules

_MEAN = op("mean", var("x"), keepdims=True, name="mu")
_D = op("sub", var("x"), _MEAN, name="d")
_VAR = alt(
    op("mean", op("mul", _D, _D), keepdims=True, name="variance"),
    op("var", var("x"), keepdims=True, correction=0, name="variance"),
)
_NORM = op("mul", _D, op("rsqrt", op("add", _VAR, const("eps", scalar=True))), name="norm")
PATTERN = alt(
    op("add", op("mul", _NORM, var("w")), var("b")),
    op("mul", _NORM, var("w")),
    _NORM,
)


def _trailing_axes(axes, rank: int) -> int | None:
    """The first normalized axis if `axes` are exactly the trailing ones, else None."""
    axes = sorted(a % rank for a in (axes if axes is not None else range(rank)))
    return axes[0] if axes == list(range(axes[0], rank)) else None


def _param_ok(p, x, axis: int) -> bool:
    """p broadcasts only along the normalized (trailing) axes: one value, or one per element of them."""
    dims = [1] * (x.type.rank - p.type.rank) + list(p.shape)  # right-aligned against x
    return all(d == 1 for d in dims[:axis]) and (p.type.numel == 1 or dims[axis:] == list(x.shape[axis:]))


def _check(m, ctx):
    x = m["x"]
    axis = _trailing_axes(m.node("mu").attrs["axes"], x.type.rank)
    if axis is None:
        return f"mean over axes {m.node('mu').attrs['axes']} of a rank-{x.type.rank} tensor is not a trailing-axes normalization"
    if _trailing_axes(m.node("variance").attrs["axes"], x.type.rank) != axis:
        return "the variance is taken over different axes than the mean"
    for key, what in (("w", "scale"), ("b", "shift")):
        p = m.get(key)
        if p is not None and not _param_ok(p, x, axis):
            return f"the {what} {p.type} is not per element of the normalized shape {list(x.shape[axis:])}"
    return ctx.only_feeds(m)


def _affine_param(b, m, key: str, norm_shape: tuple, fill: float):
    p = m.get(key)
    if p is None:
        return b.const(np.full(norm_shape, fill, dtype=m["x"].type.np_dtype))
    if p.type.numel == 1:
        return ops.broadcast_to(ops.reshape(Tensor(p), shape=(1,) * len(norm_shape)), shape=norm_shape).value
    return p if p.shape == norm_shape else ops.reshape(Tensor(p), shape=norm_shape).value


def _rewrite(b, m):
    x = m["x"]
    axis = _trailing_axes(m.node("mu").attrs["axes"], x.type.rank)
    norm_shape = x.shape[axis:]
    w = _affine_param(b, m, "w", norm_shape, 1.0)
    bias = _affine_param(b, m, "b", norm_shape, 0.0)
    return ops.layer_norm(Tensor(x), Tensor(w), Tensor(bias), axis=axis, eps=m.scalar("eps")).value


RULES = [Rule("fuse_layer_norm", PATTERN, _rewrite, _check)]


def fuse_layer_norm(graph: Graph, report: RewriteReport | None = None) -> Graph:
    return apply_rules(graph, RULES, report)
