"""Batch-norm folding: inference batch norm after a conv2d or linear becomes new weights and a bias.

    batch_norm(conv2d(x, W) [+ b], gamma, beta, mean, var)
      = conv2d(x, W * s) + ((b - mean) * s + beta),   s = gamma / sqrt(var + eps)

(per output channel; for linear, per output feature). All parameters must be
constants. A batch norm with no producer to fold into becomes the equivalent
per-channel ``x * s + t`` (elementwise, fusable into whatever precedes it).
"""
from __future__ import annotations

import numpy as np

from graphc import ops
from graphc.ir import Graph
from graphc.pattern import alt, const, op, var
from graphc.tensor import Tensor

from .rules import RewriteReport, Rule, apply_rules


def _bn_params(m):
    node = m.node("bn")
    gamma, beta, mean, variance = (np.asarray(m.const(k), np.float64) for k in ("gamma", "beta", "mean", "var"))
    scale = gamma / np.sqrt(variance + node.attrs["eps"])
    return scale, beta - mean * scale


def _channel_bias(m, channels: int) -> np.ndarray:
    b = m.get("bias")
    if b is None:
        return np.zeros(channels)
    return np.broadcast_to(np.asarray(b.node.data, np.float64).reshape(-1), (channels,))  # checked: 1 or C values


def _check_bias(m, ctx):
    anchor = m.node("anchor")
    channels = anchor.outputs[0].shape[1] if anchor.op == "conv2d" else anchor.outputs[0].shape[-1]
    b = m.get("bias")
    if b is not None:
        shape = b.shape
        per_channel = b.node.data.size in (1, channels) and (
            anchor.op != "conv2d" or all(d == 1 for d in shape[-2:]) or b.node.data.size == 1
        )
        if not per_channel:
            return f"the bias {b.type} is not one value per output channel"
    return ctx.only_feeds(m)


def _check_conv(m, ctx):
    if m.node("bn").outputs[0].type.rank != 4:
        return "batch norm is not over NCHW"
    return _check_bias(m, ctx)


def _check_linear(m, ctx):
    out = m.node("anchor").outputs[0]
    if out.type.rank != 2:
        return f"batch norm over a rank-{out.type.rank} linear output normalizes axis 1, not the features"
    return _check_bias(m, ctx)


def _fold(b, m):
    anchor = m.node("anchor")
    w = np.asarray(m.const("w"))
    channels = w.shape[0]
    scale, shift = _bn_params(m)
    bias = _channel_bias(m, channels) * scale + shift
    new_w = (w.astype(np.float64) * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
    wv = b.const(new_w, name=m["w"].name)
    x = Tensor(m["x"])
    if anchor.op == "conv2d":
        y = ops.conv2d(x, Tensor(wv), **anchor.attrs)
        return (y + b.const(bias.astype(w.dtype).reshape(channels, 1, 1))).value
    y = ops.linear(x, Tensor(wv))
    return (y + b.const(bias.astype(w.dtype))).value


def _to_affine(b, m):
    """A lone batch norm: x * s + t with per-channel constants."""
    scale, shift = _bn_params(m)
    x = Tensor(m["x"])
    shape = (-1,) + (1,) * (x.ndim - 2)
    dt = x.type.np_dtype
    return (x * b.const(scale.astype(dt).reshape(shape)) + b.const(shift.astype(dt).reshape(shape))).value


def _bn(inner):
    return op("batch_norm", inner, const("gamma"), const("beta"), const("mean"), const("var"), name="bn")


def _anchor(op_name):
    core = op(op_name, var("x"), const("w"), name="anchor")
    return alt(op("add", core, const("bias")), core)


RULES = [
    Rule("fold_batch_norm_conv", _bn(_anchor("conv2d")), _fold, _check_conv),
    Rule("fold_batch_norm_linear", _bn(_anchor("linear")), _fold, _check_linear),
    Rule("batch_norm_to_affine", _bn(var("x")), _to_affine),
]


def fold_batch_norm(graph: Graph, report: RewriteReport | None = None) -> Graph:
    return apply_rules(graph, RULES, report)
