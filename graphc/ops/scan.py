"""Products and running totals: the prod reduction, cumsum and cumprod.

cumsum/cumprod take ONNX's ``exclusive`` (element i combines the elements before i,
not including it) and ``reverse`` (run from the end of the axis). Each output element
reduces over its prefix (O(n^2) per row, no sequential scan), which vectorizes and
parallelizes like any reduction and suits the short axes models scan (positions,
masks). The gradients of prod and cumprod are exact also where x has zeros (no
division by x).
"""
from __future__ import annotations

import numpy as np

from ..ir import TensorType, check_infer
from ._grad import constant, scalar
from ._lazy import ops as O
from ._lazy import te, tir
from .reduce import _axes_of, _lower_reduction, _np_reduce, _reduce_infer
from .registry import OPAQUE, REDUCE, Sample, defop, norm_axis, prod, rand
from .te_util import te_shape

# an ONNX slice end meaning "through the first element" for negative steps
_BEFORE_START = -(2**62)


def product_reducer():
    """A TE multiplication reducer (identity 1)."""
    return te.comm_reducer(lambda a, b: a * b, lambda dtype: tir.const(1, dtype), name="product")


def _flip(t, axis: int):
    return O.slice(t, starts=(-1,), ends=(_BEFORE_START,), axes=(axis,), steps=(-1,))


# ---------------------------------------------------------------------------------------
# prod
# ---------------------------------------------------------------------------------------


def _prod_ref(x, axes, keepdims):
    if x.dtype.kind == "f":
        return _np_reduce(np.prod, x.astype(np.float64), axes, keepdims).astype(x.dtype)
    return _np_reduce(np.prod, x, axes, keepdims, dtype=x.dtype)  # wraps around like the compiled code


def _prod_grad(g, x, out, axes, keepdims):
    """d prod / d x_i = the product of the other elements: with the reduced axes flattened
    to one, the exclusive cumulative products from the left times those from the right."""
    axes = _axes_of(x.ndim, axes)
    kept = tuple(d for d in range(x.ndim) if d not in axes)
    perm = kept + axes
    xt = x if perm == tuple(range(x.ndim)) else O.transpose(x, perm=perm)
    kept_shape = tuple(x.shape[d] for d in kept)
    flat = O.reshape(xt, shape=kept_shape + (prod(x.shape[d] for d in axes),))
    others = O.cumprod(flat, axis=-1, exclusive=True) * O.cumprod(flat, axis=-1, exclusive=True, reverse=True)
    gx = O.reshape(others * O.reshape(g, shape=kept_shape + (1,)), shape=tuple(xt.shape))
    return (gx if perm == tuple(range(x.ndim)) else O.transpose(gx, perm=tuple(np.argsort(perm).tolist())),)


def _prod_samples(rng):
    with_zeros = rand(rng, 3, 4, low=-2, high=2)
    with_zeros[0, 1] = with_zeros[2, 0] = with_zeros[2, 3] = 0.0  # one zero and two zeros in a row
    return [
        Sample((rand(rng, 2, 3, 4, low=0.5, high=1.5),), {}, note="all axes"),
        Sample((rand(rng, 2, 3, 4, 5, low=-1.5, high=1.5),), {"axes": (1, -1), "keepdims": True}, note="two axes keepdims"),
        Sample((with_zeros,), {"axes": (1,)}, note="zeros"),
        Sample((rand(rng, 4, 5, low=-1.5, high=1.5),), {"axes": (0,)}),
        Sample((rand(rng, 3, 4, dtype="int64", low=-4, high=4),), {"axes": (1,)}, note="int64"),
        Sample((rand(rng, 3, 4, dtype="uint8", low=0, high=9),), {"axes": (0,)}, note="uint8 wraps"),
    ]


prod_ = defop(
    "prod",
    infer=_reduce_infer("numeric"),
    ref=_prod_ref,
    lower=_lower_reduction(product_reducer, "prod"),
    grad=_prod_grad,
    fusion=REDUCE,
    attrs={"axes": None, "keepdims": False},
    samples=_prod_samples,
    doc="Product over axes (all by default), as ONNX ReduceProd.",
)

# ---------------------------------------------------------------------------------------
# cumsum, cumprod
# ---------------------------------------------------------------------------------------


def _cum_infer(x: TensorType, axis, exclusive, reverse):
    check_infer(x.rank >= 1, "needs a tensor of rank >= 1")
    check_infer(x.dtype != "bool", "needs a numeric tensor, got bool")
    norm_axis(axis, x.rank)
    return x


def _cum_ref(np_fn, neutral: int):
    def ref(x, axis, exclusive, reverse):
        a = norm_axis(axis, x.ndim)
        y = np.flip(x, a) if reverse else x
        if exclusive:  # shift by one: prepend the neutral element, drop the last
            pad = np.full(y.shape[:a] + (1,) + y.shape[a + 1 :], neutral, dtype=y.dtype)
            y = np.concatenate([pad, np.take(y, np.arange(y.shape[a] - 1), axis=a)], axis=a)
        wide = np.float64 if x.dtype.kind == "f" else x.dtype
        y = np_fn(y.astype(wide), axis=a, dtype=wide).astype(x.dtype)
        return np.flip(y, a) if reverse else y

    return ref


def _cum_lower(reducer, neutral: int):
    def lower(x, axis, exclusive, reverse):
        shape = te_shape(x)
        a = norm_axis(axis, len(shape))
        skip = tir.const(neutral, str(x.dtype))

        def element(*i):
            k = te.reduce_axis((0, shape[a]), name="k")
            if reverse:
                inside = k > i[a] if exclusive else k >= i[a]
            else:
                inside = k < i[a] if exclusive else k <= i[a]
            # (a Select, not the reducer's `where=`: TVM 0.27's create_prim_func drops that predicate)
            return reducer()(tir.Select(inside, x[i[:a] + (k,) + i[a + 1 :]], skip), axis=k)

        return te.compute(shape, element, name="cumulative")

    return lower


def _cumsum_grad(g, x, out, axis, exclusive, reverse):
    # each x_k enters the outputs on the other side of it: a running sum the other way
    return (O.cumsum(g, axis=axis, exclusive=exclusive, reverse=not reverse),)


def _forward_cumprod_grad(g, x, a: int, exclusive: bool):
    """Gradient of a forward cumprod along axis a, without dividing by x.

    With E_k = prod_{k'<k} x_k' and R[k, i] = prod_{k<k'<=i} x_k' (to i-1 if exclusive),
    dL/dx_k = E_k * sum over outputs i that contain x_k of g_i * R[k, i]. R is a cumprod
    over i of Z[k, i] = x_i if i > k else 1, on a [.., n(k), n(i), ..] grid.
    """
    n = x.shape[a]
    trailing = (1,) * (x.ndim - a - 1)
    k, i = np.arange(n)[:, None], np.arange(n)[None, :]
    after = constant((i > k).reshape((n, n) + trailing))
    contains = constant(((k < i) if exclusive else (k <= i)).reshape((n, n) + trailing))
    z = O.where(after, O.unsqueeze(x, axes=(a,)), scalar(1, x.dtype))
    r = O.cumprod(z, axis=a + 1, exclusive=exclusive)
    terms = O.where(contains, O.unsqueeze(g, axes=(a,)) * r, scalar(0, g.dtype))
    return O.cumprod(x, axis=a, exclusive=True) * O.sum(terms, axes=(a + 1,))


def _cumprod_grad(g, x, out, axis, exclusive, reverse):
    a = norm_axis(axis, x.ndim)
    if reverse:  # a reverse cumprod is a forward one on the flipped axis
        return (_flip(_forward_cumprod_grad(_flip(g, a), _flip(x, a), a, exclusive), a),)
    return (_forward_cumprod_grad(g, x, a, exclusive),)


def _cum_samples(low: float, high: float):
    def samples(rng):
        out = [
            Sample((rand(rng, 3, 7, low=low, high=high),), {"axis": 1}),
            Sample((rand(rng, 4, 3, 2, low=low, high=high),), {"axis": 0, "exclusive": True}, note="exclusive"),
            Sample((rand(rng, 2, 5, 3, low=low, high=high),), {"axis": -2, "reverse": True}, note="reverse"),
            Sample((rand(rng, 6, low=low, high=high),), {"axis": 0, "exclusive": True, "reverse": True}, note="exclusive reverse"),
            Sample((rand(rng, 3, 5, dtype="int32", low=-3, high=4),), {"axis": 1}, note="int32"),
            Sample((rand(rng, 4, dtype="uint64", low=0, high=5),), {"axis": 0, "reverse": True}, note="uint64"),
        ]
        zeros = rand(rng, 2, 6, low=low, high=high)
        zeros[0, 2] = zeros[1, 1] = zeros[1, 4] = 0.0
        out.append(Sample((zeros,), {"axis": 1}, note="zeros"))
        return out

    return samples


_CUM_ATTRS = {"axis": 0, "exclusive": False, "reverse": False}

cumsum = defop(
    "cumsum",
    infer=_cum_infer,
    ref=_cum_ref(np.cumsum, 0),
    lower=_cum_lower(lambda: te.sum, 0),
    grad=_cumsum_grad,
    fusion=OPAQUE,
    attrs=dict(_CUM_ATTRS),
    samples=_cum_samples(-2, 2),
    doc="Running sum along axis (ONNX CumSum).",
)

cumprod = defop(
    "cumprod",
    infer=_cum_infer,
    ref=_cum_ref(np.cumprod, 1),
    lower=_cum_lower(product_reducer, 1),
    grad=_cumprod_grad,
    fusion=OPAQUE,
    attrs=dict(_CUM_ATTRS),
    samples=_cum_samples(-1.5, 1.5),
    doc="Running product along axis (ONNX CumProd).",
)
