"""Advanced (integer tensor) indexing written with graphc gathers, shared by the frontends.

PyTorch's ``x[i0, i1, ...]`` (aten.index), ``torch.gather`` and ONNX's GatherND and
GatherElements are all "pick the elements at these coordinates". With one index
tensor that is a `gather` along its axis; with several, the indexed axes are moved
to the front and flattened, the coordinates combined into one row-major index, and
one `gather` reads the flattened tensor. Constant indices (the usual case: masks built
from aranges) fold at import time, leaving a single gather in the graph.

`ctx` is a frontend's node context: ``ctx.op(name, *args, **attrs)`` emits an op at the
node, ``ctx.constant(array)`` makes a constant.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..tensor import Tensor


def _wrapped(ctx, idx: Tensor, size: int) -> Tensor:
    """i64 indices with negative ones counted from the end of an axis of `size`."""
    idx = idx if idx.dtype == "i64" else ctx.op("cast", idx, dtype="i64")
    return ctx.op("where", ctx.op("less", idx, 0), ctx.op("add", idx, size), idx)


def advanced_index(ctx, x: Tensor, indices: Sequence[Tensor | None]) -> Tensor:
    """``x[indices]`` with PyTorch/numpy semantics: indices[d] indexes axis d (None: the whole axis).

    The index tensors broadcast to a shape B. If the indexed axes are adjacent, B takes
    their place in the result; otherwise B comes first (numpy's rule).
    """
    dims = [d for d, i in enumerate(indices) if i is not None]
    if not dims:
        return x
    if len(dims) == 1:
        return ctx.op("gather", x, indices[dims[0]], axis=dims[0])
    rest = [d for d in range(x.ndim) if d not in dims]
    perm = tuple(dims + rest)
    front = x if perm == tuple(range(x.ndim)) else ctx.op("transpose", x, perm=perm)
    flat = ctx.op("reshape", front, shape=(math.prod(x.shape[d] for d in dims), *(x.shape[d] for d in rest)))
    linear, stride = None, 1
    for d in reversed(dims):
        term = _wrapped(ctx, indices[d], x.shape[d])
        term = term if stride == 1 else ctx.op("mul", term, stride)
        linear = term if linear is None else ctx.op("add", term, linear)
        stride *= x.shape[d]
    out = ctx.op("gather", flat, linear, axis=0)  # [*B, *rest]
    adjacent = dims == list(range(dims[0], dims[-1] + 1))
    if adjacent and dims[0] > 0:  # B goes back where the indexed axes were
        nb, pre = out.ndim - len(rest), dims[0]
        perm = tuple(range(nb, nb + pre)) + tuple(range(nb)) + tuple(range(nb + pre, out.ndim))
        out = ctx.op("transpose", out, perm=perm)
    return out


def gather_elements(ctx, x: Tensor, idx: Tensor, axis: int) -> Tensor:
    """``torch.gather(x, axis, idx)`` / ONNX GatherElements: out[p] = x[p with p[axis] replaced by idx[p]]."""
    rank = x.ndim
    indices = []
    for d in range(rank):
        if d == axis:
            indices.append(idx)
        else:
            shape = [1] * rank
            shape[d] = idx.shape[d]
            indices.append(ctx.constant(np.arange(idx.shape[d], dtype=np.int64).reshape(shape)))
    return advanced_index(ctx, x, indices)


def gather_nd(ctx, x: Tensor, idx: Tensor) -> Tensor:
    """ONNX GatherND with batch_dims=0: idx[..., k] holds coordinates into the first k axes of x."""
    k = idx.shape[-1]
    last = idx.ndim - 1
    coords = [ctx.op("squeeze", ctx.op("slice", idx, starts=(j,), ends=(j + 1,), axes=(last,)), axes=(last,)) for j in range(k)]
    return advanced_index(ctx, x, coords)

