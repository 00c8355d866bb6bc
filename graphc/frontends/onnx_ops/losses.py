"""Loss ONNX ops: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

Both pick one class score per element, ``input[n, target[n, d...], d...]``. With static
shapes the pick is exact and differentiable without a gather op: a one-hot of the target
(``target == arange(C)`` broadcast over the class axis) selects the score, and a sum over
the class axis reads it out. Ignored elements (``target == ignore_index``) select nothing,
so they contribute 0 to the loss and to the weight total of a mean.
"""
from __future__ import annotations

import numpy as np

from ... import dtypes
from ...tensor import Tensor
from ..onnx import NodeContext, converter

_REDUCTIONS = ("none", "sum", "mean")


def _one_hot(ctx: NodeContext, target: Tensor, classes: int, ignore_index: int | None) -> Tensor:
    """bool [N, C, d...]: element (n, c, d...) is target[n, d...] == c (never for ignored elements)."""
    if ignore_index is not None and 0 <= ignore_index < classes:
        target = ctx.op("where", ctx.op("equal", target, ctx.scalar(ignore_index, target)), ctx.scalar(-1, target), target)
    arange = np.arange(classes, dtype=dtypes.to_numpy(target.dtype)).reshape((1, classes) + (1,) * (target.ndim - 1))
    return ctx.op("equal", ctx.op("unsqueeze", target, axes=(1,)), ctx.constant(arange))


def _pick(ctx: NodeContext, one_hot: Tensor, values: Tensor) -> Tensor:
    """[N, d...]: the value each one-hot row selects (0 where it selects nothing)."""
    picked = ctx.op("where", one_hot, values, ctx.scalar(0, values))
    return ctx.op("sum", picked, axes=(1,))


def _check_inputs(ctx: NodeContext, scores: Tensor, target: Tensor) -> None:
    if scores.ndim < 2:
        raise ctx.error(f"input must be [N, C, d...] (rank >= 2), got {list(scores.shape)}")
    if target.dtype not in ("i32", "i64"):
        raise ctx.error(f"target must be int32 or int64, got {target.dtype}")
    expected = (scores.shape[0],) + scores.shape[2:]
    if target.shape != expected:
        raise ctx.error(f"target is {list(target.shape)}, but an input of shape {list(scores.shape)} needs {list(expected)}")


def _nll(ctx: NodeContext, log_prob: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
    """NegativeLogLikelihoodLoss of `log_prob` with the node's ignore_index and reduction."""
    _check_inputs(ctx, log_prob, target)
    classes = log_prob.shape[1]
    reduction = ctx.attr("reduction", "mean")
    if reduction not in _REDUCTIONS:
        raise ctx.error(f"reduction must be one of {', '.join(_REDUCTIONS)}, got {reduction!r}")
    ignore_index = ctx.attr("ignore_index", None)
    one_hot = _one_hot(ctx, target, classes, ignore_index)
    loss = ctx.op("neg", _pick(ctx, one_hot, log_prob))
    total_weight = None  # the divisor of a mean, when it is not the element count
    if weight is not None:
        if weight.shape != (classes,):
            raise ctx.error(f"weight must have one entry per class ({classes}), got {list(weight.shape)}")
        per_class = ctx.op("reshape", weight, shape=(1, classes) + (1,) * (log_prob.ndim - 2))
        picked_weight = _pick(ctx, one_hot, ctx.op("broadcast_to", per_class, shape=log_prob.shape))
        loss = ctx.op("mul", loss, picked_weight)
        total_weight = ctx.op("sum", picked_weight)
    elif ignore_index is not None:  # a mean over the elements not ignored: each selects exactly one class
        total_weight = ctx.op("sum", ctx.op("cast", one_hot, dtype=loss.dtype))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return ctx.op("sum", loss)
    if total_weight is None:
        return ctx.op("mean", loss)
    return ctx.op("div", ctx.op("sum", loss), total_weight)


@converter("NegativeLogLikelihoodLoss")
def _negative_log_likelihood_loss(ctx: NodeContext):
    return _nll(ctx, ctx.input(0), ctx.input(1), ctx.input(2) if ctx.has_input(2) else None)


@converter("SoftmaxCrossEntropyLoss")
def _softmax_cross_entropy_loss(ctx: NodeContext):
    scores = ctx.input(0)
    if scores.ndim < 2:
        raise ctx.error(f"scores must be [N, C, d...] (rank >= 2), got {list(scores.shape)}")
    log_prob = ctx.op("log_softmax", scores, axis=1)
    loss = _nll(ctx, log_prob, ctx.input(1), ctx.input(2) if ctx.has_input(2) else None)
    return loss, log_prob
