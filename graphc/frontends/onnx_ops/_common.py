"""Helpers shared by the ONNX converters."""
from __future__ import annotations

from typing import Sequence

from ...tensor import Tensor
from ..onnx import NodeContext


def norm_axis(ctx: NodeContext, axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < max(rank, 1):
        raise ctx.error(f"{what} {axis} is out of range for a rank-{rank} input")
    return axis % rank if rank else 0


def norm_axes(ctx: NodeContext, axes: Sequence[int], rank: int, what: str = "axes") -> tuple[int, ...]:
    out = [norm_axis(ctx, int(a), rank, what) for a in axes]
    if len(set(out)) != len(out):
        raise ctx.error(f"{what} {list(axes)} repeat an axis")
    return tuple(out)


def attr_or_input(ctx: NodeContext, name: str, input_index: int, since: int, what: str | None = None):
    """A list of ints that is attribute `name` before opset `since` and input `input_index` from it on.

    Returns None when absent."""
    if ctx.opset >= since:
        return ctx.ints(input_index, what or name) if ctx.has_input(input_index) else None
    value = ctx.attr(name, None)
    return None if value is None else [int(v) for v in value]


def cast_to(ctx: NodeContext, t: Tensor, dtype: str) -> Tensor:
    """t in `dtype` (no node when it already is)."""
    return t if t.dtype == dtype else ctx.op("cast", t, dtype=dtype)


def variadic(ctx: NodeContext, op: str) -> Tensor:
    out = ctx.input(0)
    for i in range(1, ctx.num_inputs):
        out = ctx.op(op, out, ctx.input(i))
    return out


def spatial_pads(ctx: NodeContext, in_sizes, kernel, strides, dilations) -> tuple[list[int], list[int]]:
    """(begin, end) padding per spatial dim from ``pads`` or ``auto_pad``."""
    n = len(in_sizes)
    auto_pad = ctx.attr("auto_pad", "NOTSET") or "NOTSET"
    if auto_pad == "NOTSET":
        pads = ctx.attr("pads", None) or [0] * (2 * n)
        if len(pads) != 2 * n:
            raise ctx.error(f"pads {list(pads)} should have {2 * n} entries")
        return list(pads[:n]), list(pads[n:])
    if auto_pad == "VALID":
        return [0] * n, [0] * n
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise ctx.error(f"unknown auto_pad {auto_pad!r}")
    begin, end = [], []
    for size, k, s, d in zip(in_sizes, kernel, strides, dilations):
        out = -(-size // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small, big = total // 2, total - total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else big)
        end.append(big if auto_pad == "SAME_UPPER" else small)
    return begin, end


class Window:
    """Kernel, strides, dilations and pads of a Conv/pool node, lifted to 2-D for 1-D inputs."""

    def __init__(self, ctx: NodeContext, x: Tensor, kernel: Sequence[int]):
        n = x.ndim - 2
        if n not in (1, 2):
            raise ctx.error(f"only 1-D and 2-D {ctx.op_type} is supported, got a rank-{x.ndim} input {list(x.shape)}")
        self.one_d = n == 1
        kernel = [int(k) for k in kernel]
        strides = [int(s) for s in (ctx.attr("strides", None) or [1] * n)]
        dilations = [int(d) for d in (ctx.attr("dilations", None) or [1] * n)]
        if not (len(kernel) == len(strides) == len(dilations) == n):
            raise ctx.error(f"kernel_shape {kernel}, strides {strides} and dilations {dilations} should have {n} entries")
        begin, end = spatial_pads(ctx, x.shape[2:], kernel, strides, dilations)
        if self.one_d:
            kernel, strides, dilations, begin, end = [1] + kernel, [1] + strides, [1] + dilations, [0] + begin, [0] + end
        self.kernel, self.stride, self.dilation = tuple(kernel), tuple(strides), tuple(dilations)
        self.pad = (begin[0], begin[1], end[0], end[1])  # top, left, bottom, right

    def pad_explicitly_if_wide(self, ctx: NodeContext, x: Tensor, value) -> Tensor:
        """graphc pools take at most half a window of padding (as torch); ONNX allows more.

        Without ceil_mode, padding with the pool's neutral value first is exact (max: -inf;
        average counting the padding: 0). `x` is the lifted (4-D) input."""
        extent = [(k - 1) * d + 1 for k, d in zip(self.kernel, self.dilation)]
        if all(2 * max(self.pad[i], self.pad[i + 2]) <= extent[i] for i in (0, 1)):
            return x
        if ctx.attr("ceil_mode", 0):
            raise ctx.error(f"pads {list(self.pad)} wider than half the {list(self.kernel)} window with ceil_mode=1 are not supported")
        if value is None:
            raise ctx.error(f"pads {list(self.pad)} wider than half the {list(self.kernel)} window need count_include_pad=1")
        top, left, bottom, right = self.pad
        self.pad = (0, 0, 0, 0)
        return ctx.op("pad", x, pads=(0, 0, top, left, 0, 0, bottom, right), mode="constant", value=value)

    def lift(self, ctx: NodeContext, x: Tensor) -> Tensor:
        return ctx.op("unsqueeze", x, axes=(2,)) if self.one_d else x

    def lower(self, ctx: NodeContext, y: Tensor) -> Tensor:
        return ctx.op("squeeze", y, axes=(2,)) if self.one_d else y
