"""Helpers for gradient rules (written in graphc ops, called while a graph is being built)."""
from __future__ import annotations

from ._lazy import ops as O


def unbroadcast(g, shape: tuple[int, ...]):
    """Sum a broadcast gradient back to `shape` (the input's shape before broadcasting)."""
    if tuple(g.shape) == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    axes = list(range(lead))
    axes += [lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1]
    out = O.sum(g, axes=tuple(axes), keepdims=False) if axes else g
    if tuple(out.shape) != tuple(shape):
        out = O.reshape(out, shape=tuple(shape))
    return out


def scalar(v, dtype: str):
    """A 0-d constant tensor of the given dtype."""
    from ..ir import current_builder
    from ..tensor import Tensor

    return Tensor(current_builder().const(v, dtype=dtype))


def constant(array):
    """A constant tensor (a numpy array: masks, index tables) in the graph being built."""
    from ..ir import current_builder
    from ..tensor import Tensor

    return Tensor(current_builder().const(array))


def zeros_like(x):
    return O.broadcast_to(scalar(0, x.dtype), shape=tuple(x.shape))


def ones_like(x):
    return O.broadcast_to(scalar(1, x.dtype), shape=tuple(x.shape))
