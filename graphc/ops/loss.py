"""Training losses: cross_entropy (class indices, label smoothing, ignore_index) and mse_loss.

Both follow PyTorch's definitions (``torch.nn.functional.cross_entropy`` / ``mse_loss``)
so a graphc train step and a PyTorch one compute the same numbers. cross_entropy
takes logits [N, C] (classes on the last axis; train.py flattens [..., C] logits)
and integer targets [N]; a target equal to ignore_index contributes nothing and is
not counted by the mean. A target outside [0, C) other than ignore_index is an
error in the reference; compiled code clamps it (no out-of-bounds read).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..errors import InputError
from ..ir import TensorType, check_infer
from ._grad import constant, scalar
from ._lazy import ops as O
from ._lazy import te, tir
from .registry import REDUCE, Sample, defop, rand
from .te_util import fast_exp, te_shape

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction) -> None:
    check_infer(reduction in _REDUCTIONS, f"reduction must be one of {', '.join(_REDUCTIONS)}, got {reduction!r}")


def _reduced(t: TensorType, reduction: str, dtype: str) -> TensorType:
    return TensorType(dtype, t.shape if reduction == "none" else ())


# ---------------------------------------------------------------------------------------
# cross_entropy
# ---------------------------------------------------------------------------------------


def _ce_infer(logits: TensorType, target: TensorType, label_smoothing, ignore_index, reduction):
    check_infer(dtypes.is_float(logits.dtype), f"logits must be a float tensor, got {logits.dtype}")
    check_infer(logits.rank == 2, f"logits must be [N, C] (flatten other dims first), got {list(logits.shape)}")
    check_infer(target.dtype in ("i32", "i64"), f"targets must be class indices (i32 or i64), got {target.dtype}")
    check_infer(target.shape == logits.shape[:1], f"targets must be [N] = {list(logits.shape[:1])} for logits {list(logits.shape)}, got {list(target.shape)}")
    check_infer(isinstance(label_smoothing, (int, float)) and 0.0 <= label_smoothing <= 1.0, f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    check_infer(isinstance(ignore_index, int) and not isinstance(ignore_index, bool), f"ignore_index must be an int, got {ignore_index!r}")
    _check_reduction(reduction)
    return _reduced(target, reduction, logits.dtype)


def _ce_ref(logits, target, label_smoothing, ignore_index, reduction):
    n, c = logits.shape
    valid = target != ignore_index
    bad = valid & ((target < 0) | (target >= c))
    if bad.any():
        raise InputError(f"cross_entropy: target {int(target[bad][0])} is not a class index in [0, {c}) (nor ignore_index {ignore_index})")
    x = logits.astype(np.float64)
    top = x.max(axis=1, keepdims=True)
    logp = x - top - np.log(np.exp(x - top).sum(axis=1, keepdims=True))
    picked = np.take_along_axis(logp, np.where(valid, target, 0)[:, None].astype(np.int64), axis=1)[:, 0]
    rows = (1.0 - label_smoothing) * -picked + label_smoothing * -logp.mean(axis=1)
    rows = np.where(valid, rows, 0.0)
    if reduction == "none":
        out = rows
    elif reduction == "sum":
        out = rows.sum()
    else:
        with np.errstate(invalid="ignore", divide="ignore"):  # every target ignored: nan, as in torch
            out = rows.sum() / valid.sum()
    return np.asarray(out).astype(logits.dtype)


def _ce_lower(logits, target, label_smoothing, ignore_index, reduction):
    n, c = te_shape(logits)
    dtype = str(logits.dtype)

    def f(v):
        return tir.const(v, dtype)

    rc = te.reduce_axis((0, c), name="rc")
    top = te.compute((n,), lambda i: te.max(logits[i, rc], axis=rc), name="row_max")
    rc2 = te.reduce_axis((0, c), name="rc")
    sum_exp = te.compute((n,), lambda i: te.sum(fast_exp(logits[i, rc2] - top[i]), axis=rc2), name="sum_exp")
    if label_smoothing:
        rc3 = te.reduce_axis((0, c), name="rc")
        row_sum = te.compute((n,), lambda i: te.sum(logits[i, rc3], axis=rc3), name="row_sum")

    def valid(i):
        return target[i] != tir.const(ignore_index, str(target.dtype))

    def row(i):
        lse = top[i] + tir.log(sum_exp[i])
        cls = tir.max(tir.min(target[i], tir.const(c - 1, str(target.dtype))), tir.const(0, str(target.dtype)))
        loss = (lse - logits[i, cls]) * f(1.0 - label_smoothing)
        if label_smoothing:
            loss = loss + (lse - row_sum[i] / f(c)) * f(label_smoothing)
        return tir.Select(valid(i), loss, f(0.0))

    rows = te.compute((n,), row, name="ce_rows")
    if reduction == "none":
        return rows
    rn = te.reduce_axis((0, n), name="rn")
    total = te.compute((), lambda: te.sum(rows[rn], axis=rn), name="ce_sum")
    if reduction == "sum":
        return total
    rn2 = te.reduce_axis((0, n), name="rn")
    count = te.compute((), lambda: te.sum(tir.Select(valid(rn2), f(1.0), f(0.0)), axis=rn2), name="ce_count")
    return te.compute((), lambda: total[()] / count[()], name="ce_mean")


def _ce_grad(g, logits, target, out, label_smoothing, ignore_index, reduction):
    """d/dlogits = (softmax(logits) - smoothed one-hot target) * weight of the row."""
    n, c = logits.shape
    dtype = logits.dtype
    classes = constant(np.arange(c, dtype=dtypes.to_numpy(target.dtype)))
    onehot = O.cast(O.equal(O.reshape(target, shape=(n, 1)), classes), dtype=dtype)
    wanted = onehot * (1.0 - label_smoothing) + label_smoothing / c if label_smoothing else onehot
    valid = O.cast(O.not_equal(target, scalar(ignore_index, target.dtype)), dtype=dtype)
    if reduction == "mean":
        weight = valid * (g / O.sum(valid))
    else:  # "sum": g is a scalar; "none": one cotangent per row
        weight = valid * g
    return (O.mul(O.sub(O.softmax(logits, axis=-1), wanted), O.reshape(weight, shape=(n, 1))), None)


def _ce_samples(rng):
    def case(n, c, attrs, note, ignored=0, scale=3.0, dtype=np.int64):
        target = rng.integers(0, c, size=n).astype(dtype)
        target[:ignored] = attrs.get("ignore_index", -100)
        return Sample((rand(rng, n, c, low=-scale, high=scale), target), attrs, note)

    return [
        case(8, 10, {}, "mean"),
        case(6, 5, {"label_smoothing": 0.1}, "label smoothing"),
        case(7, 4, {"reduction": "sum", "ignore_index": 3}, "sum, ignore_index is a class", ignored=0),
        case(9, 6, {"ignore_index": -1}, "ignored targets", ignored=3),
        case(5, 3, {"reduction": "none", "label_smoothing": 0.2}, "none, smoothing", ignored=1),
        case(4, 33, {}, "large logits", scale=40.0),
        case(5, 7, {}, "int32 targets", dtype=np.int32),
    ]


cross_entropy = defop(
    "cross_entropy",
    infer=_ce_infer,
    ref=_ce_ref,
    lower=_ce_lower,
    grad=_ce_grad,
    fusion=REDUCE,
    attrs={"label_smoothing": 0.0, "ignore_index": -100, "reduction": "mean"},
    samples=_ce_samples,
    doc="PyTorch's cross_entropy of logits [N, C] and class indices [N]: log-softmax, label smoothing, ignore_index, reduction.",
)

# ---------------------------------------------------------------------------------------
# mse_loss
# ---------------------------------------------------------------------------------------


def _mse_infer(pred: TensorType, target: TensorType, reduction):
    check_infer(dtypes.is_float(pred.dtype), f"needs float tensors, got {pred.dtype}")
    check_infer(pred == target, f"prediction {pred} and target {target} must have one shape and dtype")
    _check_reduction(reduction)
    return _reduced(pred, reduction, pred.dtype)


def _mse_ref(pred, target, reduction):
    sq = (pred.astype(np.float64) - target.astype(np.float64)) ** 2
    out = sq if reduction == "none" else sq.sum() if reduction == "sum" else sq.mean()
    return np.asarray(out).astype(pred.dtype)


def _mse_lower(pred, target, reduction):
    shape = te_shape(pred)

    def sq(i):
        d = pred[i] - target[i]
        return d * d

    if reduction == "none":
        return te.compute(shape, lambda *i: sq(i), name="mse")
    axes = [te.reduce_axis((0, d), name=f"r{k}") for k, d in enumerate(shape)]
    total = te.compute((), lambda: te.sum(sq(tuple(axes)), axis=axes) if axes else sq(()), name="mse_sum")
    if reduction == "sum":
        return total
    count = int(np.prod(shape, dtype=np.int64))
    return te.compute((), lambda: total[()] / tir.const(count, str(pred.dtype)), name="mse_mean")


def _mse_grad(g, pred, target, out, reduction):
    scale = 2.0 / max(int(np.prod(pred.shape, dtype=np.int64)), 1) if reduction == "mean" else 2.0
    d = (pred - target) * g * scale
    return (d, O.neg(d))


mse_loss = defop(
    "mse_loss",
    infer=_mse_infer,
    ref=_mse_ref,
    lower=_mse_lower,
    grad=_mse_grad,
    fusion=REDUCE,
    attrs={"reduction": "mean"},
    samples=lambda rng: [
        Sample((rand(rng, 4, 10), rand(rng, 4, 10)), note="mean"),
        Sample((rand(rng, 3, 5, 7), rand(rng, 3, 5, 7)), {"reduction": "sum"}, note="sum"),
        Sample((rand(rng, 6), rand(rng, 6)), {"reduction": "none"}, note="none"),
        Sample((rand(rng), rand(rng)), note="0-d"),
    ],
    doc="PyTorch's mse_loss: (pred - target)^2, averaged (mean), summed (sum) or kept (none).",
)
