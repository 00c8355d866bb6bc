"""Reductions and softmax ATen ops."""
from __future__ import annotations

from ..torch import AtenContext, aten
from .elementwise import _truth
from .tensor import _axis


def _axes(dim, rank: int) -> tuple[int, ...] | None:
    """Reduced axes; None (all) for a missing or empty dim list, as in ATen."""
    if dim is None or (isinstance(dim, (list, tuple)) and not dim):
        return None
    dims = [dim] if isinstance(dim, int) else dim
    return tuple(sorted({_axis(d, rank) for d in dims}))


def _reduce(ctx: AtenContext, graphc_op: str, x, dim=None, keepdim=False):
    x = ctx.cast(x, ctx.out_type(0).dtype)  # sums of ints and bools accumulate in int64; dtype= arguments
    return ctx.op(graphc_op, x, axes=_axes(dim, x.ndim), keepdims=bool(keepdim))


@aten("sum.dim_IntList")
def _sum(ctx: AtenContext, x, dim, keepdim=False, dtype=None):
    return _reduce(ctx, "sum", x, dim, keepdim)


@aten("mean.dim")
def _mean(ctx: AtenContext, x, dim, keepdim=False, dtype=None):
    return _reduce(ctx, "mean", x, dim, keepdim)


@aten("mean.default")
def _mean_all(ctx: AtenContext, x, dtype=None):
    return _reduce(ctx, "mean", x)


@aten("amax.default")
def _amax(ctx: AtenContext, x, dim=(), keepdim=False):
    return _reduce(ctx, "max", x, dim, keepdim)


@aten("amin.default")
def _amin(ctx: AtenContext, x, dim=(), keepdim=False):
    return _reduce(ctx, "min", x, dim, keepdim)


@aten("max.dim")
def _max_dim(ctx: AtenContext, x, dim, keepdim=False):
    return _reduce(ctx, "max", x, dim, keepdim), None  # indices (argmax) are not computed


@aten("min.dim")
def _min_dim(ctx: AtenContext, x, dim, keepdim=False):
    return _reduce(ctx, "min", x, dim, keepdim), None


@aten("max.default")
def _max_all(ctx: AtenContext, x):
    return _reduce(ctx, "max", x)


@aten("min.default")
def _min_all(ctx: AtenContext, x):
    return _reduce(ctx, "min", x)


@aten("var.correction")
def _var(ctx: AtenContext, x, dim=None, correction=None, keepdim=False):
    correction = 1 if correction is None else correction  # torch's default is the unbiased estimate
    return ctx.op("var", x, axes=_axes(dim, x.ndim), keepdims=bool(keepdim), correction=correction)


@aten("var_mean.correction")
def _var_mean(ctx: AtenContext, x, dim=None, correction=None, keepdim=False):
    return _var(ctx, x, dim, correction, keepdim), ctx.op("mean", x, axes=_axes(dim, x.ndim), keepdims=bool(keepdim))


@aten("any.dim", "any.dims", "any.default")
def _any(ctx: AtenContext, x, dim=None, keepdim=False):
    """The max of the truth values (as int8: graphc reductions take numbers); torch writes all() as not any(not)."""
    as_int = ctx.cast(_truth(ctx, x), "i8")
    return ctx.cast(ctx.op("max", as_int, axes=_axes(dim, x.ndim), keepdims=bool(keepdim)), "bool")


def _softmax(graphc_op: str):
    def convert(ctx: AtenContext, x, dim, half_to_float):  # (the recorded output dtype says)
        return ctx.op(graphc_op, ctx.cast(x, ctx.out_dtype), axis=_axis(dim, x.ndim))

    return convert


aten("_softmax.default")(_softmax("softmax"))
aten("_log_softmax.default")(_softmax("log_softmax"))
