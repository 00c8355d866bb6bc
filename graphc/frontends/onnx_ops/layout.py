"""Rearranging ONNX ops: DepthToSpace, SpaceToDepth (reshape, transpose, reshape) and CenterCropPad
(one pad, whose negative amounts crop)."""
from __future__ import annotations

from ...tensor import Tensor
from ..onnx import NodeContext, converter
from ._common import norm_axes


def _blocksize(ctx: NodeContext, x: Tensor) -> int:
    b = int(ctx.attr("blocksize"))
    if x.ndim != 4 or b < 1:
        raise ctx.error(f"needs a 4-D input [N, C, H, W] and blocksize >= 1, got {list(x.shape)} and {b}")
    return b


def _mode(ctx: NodeContext) -> str:
    mode = ctx.attr("mode", "DCR") or "DCR"
    if mode not in ("DCR", "CRD"):
        raise ctx.error(f"mode must be 'DCR' or 'CRD', got {mode!r}")
    return mode


@converter("DepthToSpace")
def _depth_to_space(ctx: NodeContext):
    """Channels (DCR: block row, block column, depth; CRD: depth first) moved into b x b blocks."""
    x = ctx.input(0)
    b = _blocksize(ctx, x)
    n, c, h, w = x.shape
    if c % (b * b):
        raise ctx.error(f"{c} channels are not divisible by blocksize^2 = {b * b}")
    if _mode(ctx) == "DCR":
        split, perm = (n, b, b, c // (b * b), h, w), (0, 3, 4, 1, 5, 2)
    else:
        split, perm = (n, c // (b * b), b, b, h, w), (0, 1, 4, 2, 5, 3)
    moved = ctx.op("transpose", ctx.op("reshape", x, shape=split), perm=perm)
    return ctx.op("reshape", moved, shape=(n, c // (b * b), h * b, w * b))


@converter("SpaceToDepth")
def _space_to_depth(ctx: NodeContext):
    """b x b blocks moved into channels (the inverse of DepthToSpace in the same mode)."""
    x = ctx.input(0)
    b = _blocksize(ctx, x)
    n, c, h, w = x.shape
    if h % b or w % b:
        raise ctx.error(f"spatial size {h}x{w} is not divisible by blocksize {b}")
    perm = (0, 3, 5, 1, 2, 4) if _mode(ctx) == "DCR" else (0, 1, 3, 5, 2, 4)
    moved = ctx.op("transpose", ctx.op("reshape", x, shape=(n, c, h // b, b, w // b, b)), perm=perm)
    return ctx.op("reshape", moved, shape=(n, c * b * b, h // b, w // b))


@converter("CenterCropPad")
def _center_crop_pad(ctx: NodeContext):
    """Each listed axis cropped or zero-padded to the target size around its centre (odd
    differences put the extra element at the end)."""
    x = ctx.input(0)
    target = ctx.ints(1, "shape")
    axes = norm_axes(ctx, ctx.attr("axes", None) or range(x.ndim), x.ndim)
    if len(target) != len(axes) or any(t < 0 for t in target):
        raise ctx.error(f"shape {target} should give one size >= 0 per axis of {list(axes)}")
    begin, end = [0] * x.ndim, [0] * x.ndim
    for a, t in zip(axes, target):
        grow = t - x.shape[a]  # negative: crop
        begin[a] = grow // 2 if grow >= 0 else -(-grow // 2)
        end[a] = grow - begin[a]
    if not any(begin + end):
        return x
    return ctx.op("pad", x, pads=tuple(begin + end))
