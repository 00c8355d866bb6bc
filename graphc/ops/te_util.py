"""Small helpers shared by TE lowerings (no TVM import at module level)."""
from __future__ import annotations


def te_shape(t) -> tuple[int, ...]:
    """A TE tensor's static shape as Python ints."""
    return tuple(int(d) for d in t.shape)


def broadcast_index(dims: tuple[int, ...], out_idx) -> tuple:
    """Index into a tensor of shape `dims` broadcast (numpy rules, right-aligned) to an output
    indexed by `out_idx`: size-1 and missing leading dims read index 0."""
    lead = len(out_idx) - len(dims)
    return tuple(0 if d == 1 else out_idx[lead + k] for k, d in enumerate(dims))


def read_broadcast(t, out_idx):
    """t's element that broadcasts to output position `out_idx`."""
    return t[broadcast_index(te_shape(t), out_idx)]
