"""ONNX ops that produce constants at import time (shapes are static)."""
from __future__ import annotations

import math

import numpy as np

from ..onnx import NodeContext, converter


@converter("Constant")
def _constant(ctx: NodeContext):
    where = f"{ctx.importer.where}: {ctx.describe()}"
    if len(ctx.attrs) != 1:
        raise ctx.error(f"needs exactly one value attribute, got {sorted(ctx.attrs) or 'none'}")
    (name, value), = ctx.attrs.items()
    if name == "value":
        array = value
    elif name == "value_float":
        array = np.array(value, dtype=np.float32)
    elif name == "value_floats":
        array = np.array(value, dtype=np.float32)
    elif name == "value_int":
        array = np.array(value, dtype=np.int64)
    elif name == "value_ints":
        array = np.array(value, dtype=np.int64)
    elif name == "sparse_value":
        from ..onnx import sparse_to_array

        array = sparse_to_array(ctx.node.attribute[0].sparse_tensor, where, ctx.importer.base_dir)
    elif name in ("value_string", "value_strings"):
        raise ctx.error("string constants are not supported (graphc has no string dtype)")
    else:
        raise ctx.error(f"unknown attribute {name!r}")
    return ctx.constant(np.asarray(array, order="C"))


@converter("Shape")
def _shape(ctx: NodeContext):
    shape = list(ctx.input(0).shape)
    start = int(ctx.attr("start", 0) or 0) if ctx.opset >= 15 else 0
    end = ctx.attr("end", None) if ctx.opset >= 15 else None
    return ctx.constant(np.array(shape[start : (None if end is None else int(end))], dtype=np.int64))


@converter("Size")
def _size(ctx: NodeContext):
    return ctx.constant(np.array(ctx.input(0).type.numel, dtype=np.int64))


@converter("ConstantOfShape")
def _constant_of_shape(ctx: NodeContext):
    shape = ctx.ints(0, "shape")
    if any(d < 0 for d in shape):
        raise ctx.error(f"negative dim in shape {shape}")
    value = ctx.attr("value", None)
    fill = np.zeros(1, dtype=np.float32) if value is None else np.asarray(value).reshape(-1)
    if fill.size != 1:
        raise ctx.error(f"value must have one element, got {fill.size}")
    return ctx.constant(np.full(shape, fill[0], dtype=fill.dtype))


@converter("Range")
def _range(ctx: NodeContext):
    start, limit, delta = (np.asarray(ctx.const(i, what)).reshape(-1)[0] for i, what in enumerate(("start", "limit", "delta")))
    if delta == 0:
        raise ctx.error("delta is 0")
    dtype = ctx.const(0).dtype
    n = max(int(math.ceil((float(limit) - float(start)) / float(delta))), 0)
    return ctx.constant((start + np.arange(n, dtype=np.float64 if dtype.kind == "f" else np.int64) * delta).astype(dtype))
