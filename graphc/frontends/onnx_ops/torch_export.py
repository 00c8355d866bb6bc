"""Indexing ONNX ops that PyTorch exports emit: GatherElements (``torch.gather``) and GatherND
(advanced indexing ``x[i, j]``, e.g. in Hugging Face attention-mask code).

Both are written with graphc gathers by `graphc.frontends.indexing`, which the PyTorch
frontend uses for the same ATen ops.
"""
from __future__ import annotations

from ..indexing import gather_elements, gather_nd
from ..onnx import NodeContext, converter
from ._common import norm_axis


def _check_indices(ctx: NodeContext, indices) -> None:
    if indices.dtype not in ("i64", "i32"):
        raise ctx.error(f"indices must be int32 or int64, got {indices.dtype}")


@converter("GatherElements")
def _gather_elements(ctx: NodeContext):
    x, idx = ctx.input(0), ctx.input(1)
    _check_indices(ctx, idx)
    if idx.ndim != x.ndim:
        raise ctx.error(f"indices {list(idx.shape)} must have the rank of data {list(x.shape)}")
    return gather_elements(ctx, x, idx, norm_axis(ctx, int(ctx.attr("axis")), x.ndim))


@converter("GatherND")
def _gather_nd(ctx: NodeContext):
    x, idx = ctx.input(0), ctx.input(1)
    _check_indices(ctx, idx)
    if int(ctx.attr("batch_dims", 0) or 0):
        raise ctx.error(f"batch_dims={ctx.attr('batch_dims')} is not supported (only 0)")
    if idx.ndim < 1 or not 1 <= idx.shape[-1] <= x.ndim:
        raise ctx.error(f"indices {list(idx.shape)} must end in a coordinate axis of 1 to {x.ndim} entries (data {list(x.shape)})")
    return gather_nd(ctx, x, idx)
