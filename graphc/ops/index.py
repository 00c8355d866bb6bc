"""Indexing ops: gather_elements, gather_nd, scatter_elements, scatter_nd, argmax, argmin, topk.

Indices may be negative (counting from the end, as in ONNX). Scatters take a
``reduction`` (none, add, mul, max, min) combining the updates that land on one
position with the value there; with ``none`` the last update in index order wins.

The scatter and top-k lowerings are written as "pull" computations: each output
element reduces over the updates (or the elements of its row) that concern it, so
every lowering is a pure te.compute with no write conflicts. That costs
O(outputs x updates) work, which suits the small index tensors models carry
(embedding updates, KV-cache writes, top-k of a few thousand logits).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ir import TensorType, check_infer
from ._grad import constant, ones_like, scalar, zeros_like
from ._lazy import expr_dtype, te, tir
from ._lazy import ops as O
from .math import is_nan
from .reduce import _extremum, _reduced_shape, extremum_reduce
from .registry import INJECTIVE, OPAQUE, REDUCE, Sample, defop, norm_axis, rand
from .scan import product_reducer
from .shape import _wrap_index
from .te_util import te_shape

REDUCTIONS = ("none", "add", "mul", "max", "min")

# ---------------------------------------------------------------------------------------
# shared checks and helpers
# ---------------------------------------------------------------------------------------


def _check_indices(indices: TensorType) -> None:
    check_infer(indices.dtype in ("i32", "i64"), f"indices must be i32 or i64, got {indices.dtype}")


def _check_reduction(reduction: str, dtype: str) -> None:
    check_infer(reduction in REDUCTIONS, f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    check_infer(reduction == "none" or dtype != "bool", f"reduction {reduction!r} needs a numeric tensor, got bool")


def _np_wrap(indices: np.ndarray, dim) -> np.ndarray:
    return np.where(indices < 0, indices + dim, indices).astype(np.int64)


def _np_scatter(out: np.ndarray, coords: tuple, updates: np.ndarray, reduction: str) -> np.ndarray:
    """Apply updates at coords (index arrays over the leading axes of `out`), in index order."""
    if reduction != "none":
        ufunc = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}[reduction]
        ufunc.at(out, coords, updates)
        return out
    # flat element positions of every update; numpy does not promise which of repeated
    # positions an assignment keeps, so keep the last occurrence of each explicitly
    lead = updates.shape[: updates.ndim - (out.ndim - len(coords))]
    grid = np.indices(updates.shape[len(lead) :], sparse=True)
    full = [c.reshape(lead + (1,) * len(grid)) for c in coords] + [g.reshape((1,) * len(lead) + g.shape) for g in grid]
    flat = np.ravel_multi_index(tuple(np.broadcast_to(c, updates.shape) for c in full), out.shape).reshape(-1)
    _, first_from_end = np.unique(flat[::-1], return_index=True)
    keep = flat.size - 1 - first_from_end
    out.reshape(-1)[flat[keep]] = updates.reshape(-1)[keep]
    return out


def _c(v, dtype: str):
    return tir.const(v, dtype)


def _combine_te(reduction: str, dtype: str):
    """(TE reducer over the matching updates, its neutral value, how to merge it with the old value)."""
    if reduction == "add":
        return te.sum, _c(0, dtype), lambda old, acc: old + acc
    if reduction == "mul":
        return product_reducer(), _c(1, dtype), lambda old, acc: old * acc
    is_max = reduction == "max"
    if "float" in dtype:
        neutral = _c(float("-inf") if is_max else float("inf"), dtype)
    else:
        neutral = tir.min_value(dtype) if is_max else tir.max_value(dtype)

    def merge(old, acc):
        wins = old > acc if is_max else old < acc
        return tir.Select(tir.Or(is_nan(old), wins) if "float" in dtype else wins, old, acc)

    return _extremum(is_max), neutral, merge


def _scatter_te(x, updates, out_shape, match, update_index, candidates, name: str, reduction: str):
    """Pull-style scatter: out[p] combines x[p] with the updates u (over `candidates`, a list of
    (extent, name) reduce loops, maybe none) for which match(p, u) holds; update_index(p, u)
    reads updates.

    With reduction none the last matching candidate (row-major) wins: a first stage finds its
    flat number, a second reads it.
    """
    dtype = str(x.dtype)
    extents = [n for n, _ in candidates]
    if 0 in extents:  # no updates at all
        return te.compute(out_shape, lambda *p: x[p], name=name)
    if not extents:  # a single candidate: no reduction over candidates
        def element(*p):
            hit = match(p, ())
            if reduction == "none":
                return tir.Select(hit, updates[update_index(p, ())], x[p])
            _, neutral, merge = _combine_te(reduction, dtype)
            return merge(x[p], tir.Select(hit, updates[update_index(p, ())], neutral))

        return te.compute(out_shape, element, name=name)

    def rvars():
        return [te.reduce_axis((0, n), name=nm) for n, nm in candidates]

    if reduction == "none":
        def last(*p):
            u = rvars()
            flat = _c(0, "int64")
            for v, n in zip(u, extents):
                flat = flat * n + tir.Cast("int64", v)
            return te.max(tir.Select(match(p, u), flat, _c(-1, "int64")), axis=u)

        winner = te.compute(out_shape, last, name=f"{name}_last")

        def pick(*p):
            w = tir.max(winner[p], _c(0, "int64"))
            u = []
            for n in reversed(extents):  # unflatten the winner's number into candidate indices
                u.append(tir.floormod(w, n))
                w = tir.floordiv(w, n)
            u = u[::-1]
            return tir.Select(winner[p] >= _c(0, "int64"), updates[update_index(p, u)], x[p])

        return te.compute(out_shape, pick, name=name)

    reducer, neutral, merge = _combine_te(reduction, dtype)

    def acc_of(*p):
        u = rvars()
        return reducer(tir.Select(match(p, u), updates[update_index(p, u)], neutral), axis=u)

    acc = te.compute(out_shape, acc_of, name=f"{name}_acc")
    return te.compute(out_shape, lambda *p: merge(x[p], acc[p]), name=name)


def _clamp(v, n: int):
    """Index v clamped into [0, n): reads stay in bounds where a match condition rules them out."""
    return tir.min(v, n - 1)


# ---------------------------------------------------------------------------------------
# gather_elements / scatter_elements (ONNX GatherElements / ScatterElements)
# ---------------------------------------------------------------------------------------


def _elements_infer(x: TensorType, indices: TensorType, axis) -> int:
    _check_indices(indices)
    check_infer(x.rank >= 1, "needs a tensor of rank >= 1")
    a = norm_axis(axis, x.rank)
    check_infer(indices.rank == x.rank, f"indices {list(indices.shape)} must have the rank of the data {list(x.shape)}")
    small = all(i <= d for k, (i, d) in enumerate(zip(indices.shape, x.shape)) if k != a)
    check_infer(small, f"indices {list(indices.shape)} may not exceed the data {list(x.shape)} outside axis {a}")
    return a


def _element_coords(indices: np.ndarray, axis: int, dim: int) -> tuple:
    """Index arrays addressing, for each position of `indices`, the element it names."""
    grid = list(np.indices(indices.shape, sparse=True))
    grid[axis] = _np_wrap(indices, dim)
    return tuple(np.broadcast_to(g, indices.shape) for g in grid)


def _gather_elements_infer(x: TensorType, indices: TensorType, axis):
    _elements_infer(x, indices, axis)
    return x.with_shape(indices.shape)


def _gather_elements_ref(x, indices, axis):
    a = norm_axis(axis, x.ndim)
    return x[_element_coords(indices, a, x.shape[a])]


def _gather_elements_lower(x, indices, axis):
    shape = te_shape(x)
    a = norm_axis(axis, len(shape))
    return te.compute(
        te_shape(indices), lambda *i: x[i[:a] + (_wrap_index(indices[i], shape[a]),) + i[a + 1 :]], name="gather_elements"
    )


_ELEMENT_CASES = [  # (data shape, indices, axis, note)
    ((3, 4), np.array([[0, 2, -1, 1], [3, 0, 0, -4]], np.int64), 1, "negative indices"),
    ((4, 3, 2), np.array([[[1, 0], [3, 3]], [[-1, 2], [0, 1]]], np.int32), 0, "i32, smaller than the data"),
    ((5,), np.array([4, 0, 2], np.int64), -1, "1-d"),
]


def _gather_elements_samples(rng):
    out = [Sample((rand(rng, *shape), idx.copy()), {"axis": axis}, note=note) for shape, idx, axis, note in _ELEMENT_CASES]
    out.append(Sample((rand(rng, 3, 4, dtype="int16", low=-9, high=9), _ELEMENT_CASES[0][1].copy()), {"axis": 1}, note="int16"))
    return out


gather_elements = defop(
    "gather_elements",
    infer=_gather_elements_infer,
    ref=_gather_elements_ref,
    lower=_gather_elements_lower,
    grad=lambda g, x, indices, out, axis: (O.scatter_elements(zeros_like(x), indices, g, axis=axis, reduction="add"), None),
    fusion=INJECTIVE,
    attrs={"axis": 0},
    samples=_gather_elements_samples,
    doc="out[i] = x[i with axis replaced by indices[i]] (ONNX GatherElements, torch.gather).",
)


def _scatter_elements_infer(x: TensorType, indices: TensorType, updates: TensorType, axis, reduction):
    _elements_infer(x, indices, axis)
    check_infer(updates.shape == indices.shape, f"updates {list(updates.shape)} must have the shape of indices {list(indices.shape)}")
    check_infer(updates.dtype == x.dtype, f"updates dtype {updates.dtype} differs from the data's {x.dtype}")
    _check_reduction(reduction, x.dtype)
    return x


def _scatter_elements_ref(x, indices, updates, axis, reduction):
    a = norm_axis(axis, x.ndim)
    return _np_scatter(x.copy(), _element_coords(indices, a, x.shape[a]), updates, reduction)


def _scatter_elements_lower(x, indices, updates, axis, reduction):
    shape, ishape = te_shape(x), te_shape(indices)
    a = norm_axis(axis, len(shape))

    def position(p, u):  # the update candidate u[0] along the axis, at p's other coordinates
        return tuple(u[0] if k == a else (_clamp(v, ishape[k]) if ishape[k] < shape[k] else v) for k, v in enumerate(p))

    def match(p, u):
        inside = [v < ishape[k] for k, v in enumerate(p) if k != a and ishape[k] < shape[k]]
        hit = _wrap_index(indices[position(p, u)], shape[a]) == p[a]
        return tir.all(*inside, hit) if inside else hit

    return _scatter_te(x, updates, shape, match, position, [(ishape[a], "k")], "scatter_elements", reduction)


def _scatter_grad(gather, g, x, indices, updates, out, reduction, **attrs):
    """Gradients of scatter_elements / scatter_nd through the matching gather. Exact, except
    for mul, max and min where several updates land on one position."""
    scatter = O.scatter_elements if gather is O.gather_elements else O.scatter_nd
    if reduction == "add":
        return g, None, gather(g, indices, **attrs)
    if reduction == "none":
        # overwritten positions pass nothing back to x; of the updates landing on one position
        # only the winner (the last) gets the gradient: scatter every update's number, read back
        ids = constant(np.arange(updates.type.numel, dtype=np.int64).reshape(updates.shape))
        owner = scatter(O.broadcast_to(scalar(-1, "i64"), shape=tuple(x.shape)), indices, ids, reduction="none", **attrs)
        won = O.equal(gather(owner, indices, **attrs), ids)
        gu = O.where(won, gather(g, indices, **attrs), scalar(0, g.dtype))
        return scatter(g, indices, zeros_like(updates), reduction="none", **attrs), None, gu
    if reduction == "mul":
        gx = g * scatter(ones_like(x), indices, updates, reduction="mul", **attrs)
        return gx, None, gather(g * x, indices, **attrs)
    # max / min: the gradient flows to whichever of x and the updates is the result
    zero = scalar(0, g.dtype)
    gx = O.where(O.equal(x, out), g, zero)
    gu = O.where(O.equal(updates, gather(out, indices, **attrs)), gather(g, indices, **attrs), zero)
    return gx, None, gu


def _reduction_samples(make):
    """One sample per reduction from make(rng, reduction) -> (inputs, attrs, note)."""

    def samples(rng):
        out = []
        for reduction in REDUCTIONS:
            inputs, attrs, note = make(rng, reduction)
            out.append(Sample(inputs, {**attrs, "reduction": reduction}, note=f"{reduction}{', ' + note if note else ''}"))
        return out

    return samples


def _distinct_targets(rng, rows: int, cols: int, count: int) -> np.ndarray:
    """[rows, count] column indices, distinct within each row (one update per position)."""
    return np.stack([rng.permutation(cols)[:count] for _ in range(rows)]).astype(np.int64)


def _scatter_elements_make(rng, reduction):
    idx = _distinct_targets(rng, 3, 5, 3)
    idx[0, 0] -= 5  # a negative index
    return (rand(rng, 3, 5), idx, rand(rng, 3, 3)), {"axis": 1}, ""


def _scatter_elements_samples(rng):
    dup = np.array([[1, 1, 0]], np.int64)  # two updates on one position: the last wins / they combine
    return _reduction_samples(_scatter_elements_make)(rng) + [
        Sample((rand(rng, 4, 3), np.array([[1, 0], [3, 2]], np.int64), rand(rng, 2, 2)), {"axis": 0}, note="axis 0, fewer columns"),
        Sample((rand(rng, 1, 4), dup, rand(rng, 1, 3)), {"axis": 1, "reduction": "none"}, note="duplicates: last wins"),
        Sample((rand(rng, 1, 4), dup, rand(rng, 1, 3)), {"axis": 1, "reduction": "add"}, note="duplicates accumulate"),
        Sample((rand(rng, 2, 4, dtype="uint32", low=0, high=9), np.array([[3], [0]], np.int64), rand(rng, 2, 1, dtype="uint32", low=0, high=9)),
               {"axis": 1, "reduction": "max"}, note="uint32 max"),
    ]


scatter_elements = defop(
    "scatter_elements",
    infer=_scatter_elements_infer,
    ref=_scatter_elements_ref,
    lower=_scatter_elements_lower,
    grad=lambda g, x, indices, updates, out, axis, reduction: _scatter_grad(O.gather_elements, g, x, indices, updates, out, reduction, axis=axis),
    fusion=OPAQUE,
    attrs={"axis": 0, "reduction": "none"},
    samples=_scatter_elements_samples,
    doc="x with updates[i] written at (i with axis replaced by indices[i]) (ONNX ScatterElements).",
)

# ---------------------------------------------------------------------------------------
# gather_nd / scatter_nd (ONNX GatherND / ScatterND; batch_dims as in GatherND)
# ---------------------------------------------------------------------------------------


def _nd_infer(x: TensorType, indices: TensorType, batch_dims) -> tuple[int, int]:
    """(b, m): batch dims and the length of each index tuple."""
    _check_indices(indices)
    b = batch_dims
    check_infer(isinstance(b, int) and b >= 0, f"batch_dims must be an int >= 0, got {b!r}")
    check_infer(indices.rank >= 1 and indices.rank > b, f"indices {list(indices.shape)} need more than batch_dims={b} dims")
    m = indices.shape[-1]
    check_infer(1 <= m <= x.rank - b, f"index tuples of length {m} do not fit data of rank {x.rank} with batch_dims={b}")
    check_infer(indices.shape[:b] == x.shape[:b], f"batch dims of indices {list(indices.shape)} and data {list(x.shape)} differ")
    return b, m


def _nd_gathered_shape(x_shape, indices_shape, b: int, m: int) -> tuple[int, ...]:
    return tuple(indices_shape[:-1]) + tuple(x_shape[b + m :])


def _nd_coords(indices: np.ndarray, x_shape, b: int) -> tuple:
    """Index arrays (over indices.shape[:-1]) addressing the slices the index tuples name."""
    lead = indices.shape[:-1]
    batch = [np.broadcast_to(g, lead) for g in np.indices(lead, sparse=True)[:b]]
    tuples = [_np_wrap(indices[..., k], x_shape[b + k]) for k in range(indices.shape[-1])]
    return tuple(batch + tuples)


def _gather_nd_infer(x: TensorType, indices: TensorType, batch_dims):
    b, m = _nd_infer(x, indices, batch_dims)
    return x.with_shape(_nd_gathered_shape(x.shape, indices.shape, b, m))


def _gather_nd_ref(x, indices, batch_dims):
    return x[_nd_coords(indices, x.shape, batch_dims)]


def _gather_nd_lower(x, indices, batch_dims):
    shape, ishape = te_shape(x), te_shape(indices)
    b, m = batch_dims, ishape[-1]
    q = len(ishape) - 1  # output dims that come from indices.shape[:-1]

    def element(*i):
        picked = tuple(_wrap_index(indices[i[:q] + (k,)], shape[b + k]) for k in range(m))
        return x[i[:b] + picked + i[q:]]

    return te.compute(_nd_gathered_shape(shape, ishape, b, m), element, name="gather_nd")


def _gather_nd_samples(rng):
    return [
        Sample((rand(rng, 3, 4), np.array([[0, 1], [2, -1], [1, 3]], np.int64)), note="elements"),
        Sample((rand(rng, 3, 4, 2), np.array([[[1], [0]], [[-1], [2]]], np.int64)), note="slices"),
        Sample((rand(rng, 2, 3, 4), np.array([[[1, 2]], [[0, -1]]], np.int32)), {"batch_dims": 1}, note="batch_dims 1"),
        Sample((rand(rng, 2, 3, 4, dtype="uint16", low=0, high=99), np.array([[2], [0]], np.int64)), {"batch_dims": 1}, note="uint16"),
    ]


gather_nd = defop(
    "gather_nd",
    infer=_gather_nd_infer,
    ref=_gather_nd_ref,
    lower=_gather_nd_lower,
    grad=lambda g, x, indices, out, batch_dims: (
        O.scatter_nd(zeros_like(x), indices, g, reduction="add", batch_dims=batch_dims), None,
    ),
    fusion=INJECTIVE,
    attrs={"batch_dims": 0},
    samples=_gather_nd_samples,
    doc="Slices of x named by the index tuples in the last axis of indices (ONNX GatherND).",
)


def _scatter_nd_infer(x: TensorType, indices: TensorType, updates: TensorType, reduction, batch_dims):
    b, m = _nd_infer(x, indices, batch_dims)
    want = _nd_gathered_shape(x.shape, indices.shape, b, m)
    check_infer(updates.shape == want, f"updates must have shape {list(want)} (indices.shape[:-1] + data.shape[{b + m}:]), got {list(updates.shape)}")
    check_infer(updates.dtype == x.dtype, f"updates dtype {updates.dtype} differs from the data's {x.dtype}")
    _check_reduction(reduction, x.dtype)
    return x


def _scatter_nd_ref(x, indices, updates, reduction, batch_dims):
    return _np_scatter(x.copy(), _nd_coords(indices, x.shape, batch_dims), updates, reduction)


def _scatter_nd_lower(x, indices, updates, reduction, batch_dims):
    shape, ishape = te_shape(x), te_shape(indices)
    b, m = batch_dims, ishape[-1]
    lead = ishape[b:-1]  # the update candidates within one batch

    def match(p, u):
        hits = [_wrap_index(indices[p[:b] + tuple(u) + (k,)], shape[b + k]) == p[b + k] for k in range(m)]
        return tir.all(*hits) if len(hits) > 1 else hits[0]

    def update_index(p, u):
        return p[:b] + tuple(u) + p[b + m :]

    candidates = [(n, f"u{k}") for k, n in enumerate(lead)]  # none with one index tuple per batch
    return _scatter_te(x, updates, shape, match, update_index, candidates, "scatter_nd", reduction)


def _distinct_pairs(rng, shape, count: int) -> np.ndarray:
    flat = rng.permutation(int(np.prod(shape)))[:count]
    return np.stack(np.unravel_index(flat, shape), axis=-1).astype(np.int64)


def _scatter_nd_make(rng, reduction):
    idx = _distinct_pairs(rng, (3, 4), 5)
    idx[0, 1] -= 4  # a negative index
    return (rand(rng, 3, 4, 2), idx, rand(rng, 5, 2)), {}, "pairs into rank 3"


def _scatter_nd_samples(rng):
    return _reduction_samples(_scatter_nd_make)(rng) + [
        Sample((rand(rng, 4, 3), np.array([[1], [3]], np.int64), rand(rng, 2, 3)), {"reduction": "none"}, note="rows"),
        Sample((rand(rng, 2, 5), np.array([[3], [0]], np.int32), rand(rng, 2)), {"reduction": "add", "batch_dims": 1}, note="batch_dims 1"),
        Sample((rand(rng, 2, 3), np.array([[1, 1], [1, 1]], np.int64), rand(rng, 2)), {"reduction": "none"}, note="duplicates: last wins"),
        Sample((rand(rng, 3, 3, dtype="int64", low=-9, high=9), np.array([[0, 0], [2, 1]], np.int64), rand(rng, 2, dtype="int64", low=-9, high=9)),
               {"reduction": "mul"}, note="int64 mul"),
    ]


scatter_nd = defop(
    "scatter_nd",
    infer=_scatter_nd_infer,
    ref=_scatter_nd_ref,
    lower=_scatter_nd_lower,
    grad=lambda g, x, indices, updates, out, reduction, batch_dims: _scatter_grad(
        O.gather_nd, g, x, indices, updates, out, reduction, batch_dims=batch_dims
    ),
    fusion=OPAQUE,
    attrs={"reduction": "none", "batch_dims": 0},
    samples=_scatter_nd_samples,
    doc="x with the slices named by the index tuples of indices replaced by updates (ONNX ScatterND).",
)

# ---------------------------------------------------------------------------------------
# argmax / argmin: int64 positions; ties go to the first (or last) position; NaN is
# the extreme of both, as in numpy
# ---------------------------------------------------------------------------------------


def _arg_infer(x: TensorType, axis, keepdims, select_last_index):
    check_infer(x.rank >= 1, "needs a tensor of rank >= 1")
    check_infer(x.dtype != "bool", "needs a numeric tensor, got bool")
    a = norm_axis(axis, x.rank)
    return TensorType("i64", _reduced_shape(x.shape, (a,), keepdims))


def _comparable(x: np.ndarray) -> np.ndarray:
    """x for numpy's comparisons: bfloat16 (whose numpy sort and argmax mishandle NaN) as float32, exactly."""
    return x.astype(np.float32) if x.dtype == dtypes.to_numpy("bf16") else x


def _arg_ref(np_fn):
    def ref(x, axis, keepdims, select_last_index):
        a = norm_axis(axis, x.ndim)
        x = _comparable(x)
        if select_last_index:
            idx = x.shape[a] - 1 - np_fn(np.flip(x, a), axis=a)
        else:
            idx = np_fn(x, axis=a)
        return np.expand_dims(idx, a).astype(np.int64) if keepdims else idx.astype(np.int64)

    return ref


def _greater(v, w):
    """v > w in numpy's sort order, where NaN is greater than every number."""
    if "float" not in expr_dtype(v):
        return v > w
    return tir.Or(tir.And(is_nan(v), tir.Not(is_nan(w))), v > w)


def _same(v, w):
    return tir.Or(v == w, tir.And(is_nan(v), is_nan(w))) if "float" in expr_dtype(v) else v == w


def _arg_lower(is_max: bool):
    """Two reductions: the extreme value (NaN wins), then the first (or last) position holding it.
    (One tuple reduction of (position, value) would do, but TVM miscompiles those on bf16 data.)"""

    def lower(x, axis, keepdims, select_last_index):
        shape = te_shape(x)
        a = norm_axis(axis, len(shape))
        n = shape[a]

        def value(index):  # bf16 compares in float32, exactly (TVM lacks bf16 isnan)
            return tir.Cast("float32", x[index]) if str(x.dtype) == "bfloat16" else x[index]

        best = extremum_reduce(shape, (a,), True, value, is_max, "arg_best")

        def position(*i):
            k = te.reduce_axis((0, n), name="k")
            row = i if keepdims else i[:a] + (0,) + i[a:]
            hit = _same(value(row[:a] + (k,) + row[a + 1 :]), best[row[:a] + (0,) + row[a + 1 :]])
            if select_last_index:
                return te.max(tir.Select(hit, tir.Cast("int64", k), _c(-1, "int64")), axis=k)
            return te.min(tir.Select(hit, tir.Cast("int64", k), _c(n, "int64")), axis=k)

        return te.compute(_reduced_shape(shape, (a,), keepdims), position, name="arg")

    return lower


def _arg_samples(rng):
    tied = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, np.nan, 5.0, np.nan]], np.float32)
    return [
        Sample((rand(rng, 3, 4, 5),), {"axis": 1}),
        Sample((rand(rng, 3, 4, 5),), {"axis": -1, "keepdims": False}, note="no keepdims"),
        Sample((tied,), {"axis": 1}, note="ties, nan"),
        Sample((tied,), {"axis": 1, "select_last_index": True}, note="ties, nan, last index"),
        Sample((rand(rng, 2, 6, dtype="int32", low=-3, high=3),), {"axis": 0, "select_last_index": True}, note="int32 ties"),
        Sample((rand(rng, 5, dtype="uint8", low=0, high=4),), {"axis": 0}, note="uint8 1-d"),
        Sample((tied.astype(dtypes.to_numpy("bf16")),), {"axis": 1}, note="bf16 ties, nan"),
    ]


_ARG_ATTRS = {"axis": 0, "keepdims": True, "select_last_index": False}

argmax = defop(
    "argmax", infer=_arg_infer, ref=_arg_ref(np.argmax), lower=_arg_lower(True),
    grad=None, differentiable=False, fusion=REDUCE, attrs=dict(_ARG_ATTRS), samples=_arg_samples,
    doc="Position (i64) of the largest element along axis (ONNX ArgMax).",
)
argmin = defop(
    "argmin", infer=_arg_infer, ref=_arg_ref(np.argmin), lower=_arg_lower(False),
    grad=None, differentiable=False, fusion=REDUCE, attrs=dict(_ARG_ATTRS), samples=_arg_samples,
    doc="Position (i64) of the smallest element along axis (ONNX ArgMin).",
)

# ---------------------------------------------------------------------------------------
# topk: the k largest (smallest) elements along axis, sorted, ties to the lower position;
# NaN counts as larger than every number (numpy's sort order)
# ---------------------------------------------------------------------------------------


def _topk_infer(x: TensorType, k, axis, largest):
    check_infer(x.rank >= 1, "needs a tensor of rank >= 1")
    check_infer(x.dtype != "bool", "needs a numeric tensor, got bool")
    a = norm_axis(axis, x.rank)
    check_infer(isinstance(k, int) and 1 <= k <= x.shape[a], f"k={k!r} must be an int in [1, {x.shape[a]}] (the size of axis {a})")
    shape = x.shape[:a] + (k,) + x.shape[a + 1 :]
    return x.with_shape(shape), TensorType("i64", shape)


def _topk_ref(x, k, axis, largest):
    a = norm_axis(axis, x.ndim)
    n = x.shape[a]
    keys = _comparable(x)
    if largest:  # a stable ascending sort of the reversed axis, read backwards: ties keep the lower position first
        order = (n - 1) - np.flip(np.argsort(np.flip(keys, a), axis=a, kind="stable"), a)
    else:
        order = np.argsort(keys, axis=a, kind="stable")
    idx = np.take(order, np.arange(k), axis=a).astype(np.int64)
    return np.take_along_axis(x, idx, axis=a), idx


def _topk_lower(x, k, axis, largest):
    """rank[i] = how many elements come before element i; output r is the element of rank r."""
    shape = te_shape(x)
    a = norm_axis(axis, len(shape))
    n = shape[a]
    out_shape = shape[:a] + (k,) + shape[a + 1 :]

    def at(i, j):
        return i[:a] + (j,) + i[a + 1 :]

    def rank_of(*i):
        j = te.reduce_axis((0, n), name="j")
        xi, xj = x[i], x[at(i, j)]
        # NaN sorts as the largest value: first among the largest, last among the smallest
        ahead = _greater(xj, xi) if largest else _greater(xi, xj)
        before = tir.Or(ahead, tir.And(_same(xj, xi), j < i[a]))
        return te.sum(tir.Select(before, _c(1, "int64"), _c(0, "int64")), axis=j)

    rank = te.compute(shape, rank_of, name="topk_rank")

    def position(*r):
        j = te.reduce_axis((0, n), name="j")
        return te.sum(tir.Select(rank[at(r, j)] == tir.Cast("int64", r[a]), tir.Cast("int64", j), _c(0, "int64")), axis=j)

    index = te.compute(out_shape, position, name="topk_index")
    values = te.compute(out_shape, lambda *r: x[at(r, index[r])], name="topk_values")
    return values, index


def _topk_grad(g, x, out, k, axis, largest):
    gv = g[0]
    if gv is None:
        return (None,)
    return (O.scatter_elements(zeros_like(x), out[1], gv, axis=axis, reduction="add"),)


def _topk_samples(rng):
    tied = np.array([[3, 1, 3, 2, 1], [0, 0, 0, 0, 0]], np.int64)
    special = np.array([[1.0, np.nan, -np.inf, 2.0, np.inf, 0.5]], np.float32)
    return [
        Sample((rand(rng, 3, 7),), {"k": 3}),
        Sample((rand(rng, 5, 4),), {"k": 2, "axis": 0, "largest": False}, note="smallest, axis 0"),
        Sample((tied,), {"k": 4}, note="int64 ties"),
        Sample((tied,), {"k": 3, "largest": False}, note="int64 ties, smallest"),
        Sample((special,), {"k": 6}, note="nan, inf", no_grad_check=(0,)),
        Sample((special,), {"k": 6, "largest": False}, note="nan, inf, smallest", no_grad_check=(0,)),
        Sample((rand(rng, 2, 3, 4),), {"k": 3, "axis": 1}, note="k = axis size"),
        Sample((special.astype(dtypes.to_numpy("bf16")),), {"k": 4}, note="bf16 nan, inf"),
    ]


topk = defop(
    "topk",
    infer=_topk_infer,
    ref=_topk_ref,
    lower=_topk_lower,
    grad=_topk_grad,
    fusion=OPAQUE,
    attrs={"k": 1, "axis": -1, "largest": True},
    samples=_topk_samples,
    doc="(values, i64 positions) of the k largest (smallest) elements along axis, sorted (ONNX TopK).",
)

