"""Quantization ONNX ops, decomposed into graphc ops with the integer arithmetic kept exact.

* QuantizeLinear / DequantizeLinear: per-tensor, per-axis and blocked scales and zero
  points (graph inputs or constants), integer types graphc has (int8/uint8/int16/uint16;
  float8 and int4 types have no graphc dtype and fail at the tensor that uses them).
* DynamicQuantizeLinear: uint8 with the scale and zero point computed from the data.
* MatMulInteger / ConvInteger: zero points subtracted in int32; matmul accumulates in
  int32, convolution in float64 (exact: every partial sum of 8/16-bit products stays
  far below 2^53) and is cast back to int32.
* QLinearMatMul / QLinearConv: the same int32 accumulators, requantized in float64 as the
  ONNX reference does (round half to even, saturate to the output type).
"""
from __future__ import annotations

import numpy as np

from ... import dtypes
from ...tensor import Tensor
from ..onnx import NodeContext, constant_value, converter, graphc_dtype
from ._common import norm_axis
from ._compose import call_converter

_QUANT_DTYPES = ("u8", "i8", "u16", "i16")


def _range(dtype: str) -> tuple[int, int]:
    info = np.iinfo(dtypes.to_numpy(dtype))
    return int(info.min), int(info.max)


def _saturate(ctx: NodeContext, x: Tensor, dtype: str) -> Tensor:
    """Clamp to `dtype`'s range (x holds integral values) and cast."""
    lo, hi = _range(dtype)
    return ctx.op("cast", ctx.op("minimum", ctx.op("maximum", x, ctx.scalar(lo, x)), ctx.scalar(hi, x)), dtype=dtype)


def _per_axis(ctx: NodeContext, param: Tensor, x: Tensor, block_size: int, what: str) -> Tensor:
    """A scale / zero point broadcastable to x: a scalar (per tensor), a [C] vector along the
    ``axis`` attribute (per axis), or x's shape with that axis cut in blocks of `block_size` (blocked)."""
    if param.type.numel == 1 and not block_size:
        return ctx.op("reshape", param, shape=())
    axis = norm_axis(ctx, int(ctx.attr("axis", 1)), x.ndim)
    if not block_size:
        if param.ndim != 1 or param.shape[0] != x.shape[axis]:
            raise ctx.error(f"{what} {list(param.shape)} must be a scalar or have {x.shape[axis]} elements (axis {axis} of {list(x.shape)})")
        shape = [1] * x.ndim
        shape[axis] = param.shape[0]
        return ctx.op("reshape", param, shape=tuple(shape))
    if block_size < 0:
        raise ctx.error(f"block_size must be positive, got {block_size}")
    blocks = -(-x.shape[axis] // block_size)
    expected = x.shape[:axis] + (blocks,) + x.shape[axis + 1 :]
    if param.shape != expected:
        raise ctx.error(f"{what} {list(param.shape)} should be {list(expected)} for blocks of {block_size} along axis {axis} of {list(x.shape)}")
    # repeat each block's value block_size times along the axis, then drop the padding of the last block
    spread = ctx.op("broadcast_to", ctx.op("unsqueeze", param, axes=(axis + 1,)), shape=expected[: axis + 1] + (block_size,) + expected[axis + 1 :])
    full = ctx.op("reshape", spread, shape=expected[:axis] + (blocks * block_size,) + expected[axis + 1 :])
    if blocks * block_size == x.shape[axis]:
        return full
    return ctx.op("slice", full, starts=(0,), ends=(x.shape[axis],), axes=(axis,), steps=(1,))


def _scales(ctx: NodeContext, x: Tensor, scale_index: int, zp_index: int) -> tuple[Tensor, Tensor | None]:
    """The scale and zero point (None when absent) of a Quantize/DequantizeLinear node, broadcastable to x."""
    block_size = int(ctx.attr("block_size", 0) or 0)
    scale = _per_axis(ctx, ctx.input(scale_index), x, block_size, "scale")
    zero = _per_axis(ctx, ctx.input(zp_index), x, block_size, "zero point") if ctx.has_input(zp_index) else None
    return scale, zero


@converter("QuantizeLinear")
def _quantize_linear(ctx: NodeContext):
    """y = saturate(round_half_even(x / scale) + zero_point)."""
    x = ctx.input(0)
    out = _quantized_dtype(ctx)
    scale, zero = _scales(ctx, x, 1, 2)
    precision = int(ctx.attr("precision", 0) or 0)
    if precision:  # opset 23+: the division's float type
        dtype = graphc_dtype(precision, f"{ctx.importer.where}: {ctx.describe()}: attribute 'precision'")
        x, scale = ctx.op("cast", x, dtype=dtype), ctx.op("cast", scale, dtype=dtype)
    elif x.dtype != scale.dtype:  # (opset 10 allows int32 x with float scales)
        x = ctx.op("cast", x, dtype=scale.dtype)
    q = ctx.op("cast", ctx.op("round", ctx.op("div", x, scale)), dtype="i32")
    if zero is not None:
        q = ctx.op("add", q, ctx.op("cast", zero, dtype="i32"))
    return _saturate(ctx, q, out)


def _quantized_dtype(ctx: NodeContext) -> str:
    """The zero point's type, else output_dtype (opset 21+), else uint8."""
    if ctx.has_input(2):
        out = ctx.input(2).dtype
    else:
        code = int(ctx.attr("output_dtype", 0) or 0)
        out = graphc_dtype(code, f"{ctx.importer.where}: {ctx.describe()}: output_dtype") if code else "u8"
    if out not in _QUANT_DTYPES:
        raise ctx.error(f"cannot quantize to {out} (graphc quantizes to {', '.join(_QUANT_DTYPES)})")
    return out


@converter("DequantizeLinear")
def _dequantize_linear(ctx: NodeContext):
    """y = (x - zero_point) * scale: the difference exact in int32, the product in float32."""
    x = ctx.input(0)
    scale, zero = _scales(ctx, x, 1, 2)
    code = int(ctx.attr("output_dtype", 0) or 0)
    out = graphc_dtype(code, f"{ctx.importer.where}: {ctx.describe()}: output_dtype") if code else scale.dtype
    if dtypes.is_float(x.dtype):
        raise ctx.error(f"x is {x.dtype}: graphc dequantizes integer types only")
    diff = ctx.op("cast", x, dtype="i32")
    if zero is not None:
        diff = ctx.op("sub", diff, ctx.op("cast", zero, dtype="i32"))
    y = ctx.op("mul", ctx.op("cast", diff, dtype="f32"), ctx.op("cast", scale, dtype="f32"))
    return y if out == "f32" else ctx.op("cast", y, dtype=out)


@converter("DynamicQuantizeLinear")
def _dynamic_quantize_linear(ctx: NodeContext):
    """uint8 over the data's range extended to contain 0: scale = (max - min) / 255 (1 if the
    range is empty, as onnxruntime), zero point = saturate(round(-min / scale))."""
    x = ctx.input(0)
    if x.dtype != "f32":
        raise ctx.error(f"x must be float32, got {x.dtype}")
    zero = ctx.scalar(0, x)
    hi = ctx.op("maximum", ctx.op("max", x, axes=None, keepdims=False), zero)
    lo = ctx.op("minimum", ctx.op("min", x, axes=None, keepdims=False), zero)
    span = ctx.op("sub", hi, lo)
    scale = ctx.op("where", ctx.op("equal", span, zero), ctx.scalar(1, x), ctx.op("div", span, ctx.scalar(255, x)))
    initial = ctx.op("sub", zero, ctx.op("div", lo, scale))
    clamped = ctx.op("minimum", ctx.op("maximum", initial, zero), ctx.scalar(255, x))
    zero_point = ctx.op("cast", ctx.op("round", clamped), dtype="u8")
    return call_converter(ctx, "QuantizeLinear", [x, scale, zero_point]), scale, zero_point


# ---------------------------------------------------------------------------------------
# integer matmul / conv
# ---------------------------------------------------------------------------------------
def _centered(ctx: NodeContext, index: int, zp_index: int, zp_shape=None) -> Tensor:
    """Input `index` minus its zero point, in int32 (the zero point reshaped to `zp_shape` when it is not a scalar)."""
    x = ctx.input(index)
    if x.dtype not in _QUANT_DTYPES:
        raise ctx.error(f"input {index} ({ctx.input_name(index)!r}) has type {x.dtype}, expected one of {', '.join(_QUANT_DTYPES)}")
    x32 = ctx.op("cast", x, dtype="i32")
    if not ctx.has_input(zp_index):
        return x32
    zp = ctx.op("cast", ctx.input(zp_index), dtype="i32")
    if zp.type.numel == 1:
        zp = ctx.op("reshape", zp, shape=())
    elif zp_shape is not None:
        zp = ctx.op("reshape", zp, shape=zp_shape)
    return ctx.op("sub", x32, zp)


def _row_shape(a: Tensor) -> tuple[int, ...] | None:
    """A per-row (per-M) parameter of an [..., M, K] operand, as [M, 1]."""
    return (a.shape[-2], 1) if a.ndim >= 2 else None


def _integer_matmul(ctx: NodeContext, a_index: int, b_index: int, a_zp: int, b_zp: int) -> Tensor:
    return ctx.op("matmul", _centered(ctx, a_index, a_zp, _row_shape(ctx.input(a_index))), _centered(ctx, b_index, b_zp))


def _integer_conv(ctx: NodeContext, x_index: int, w_index: int, x_zp: int, w_zp: int, bias_index: int | None = None) -> Tensor:
    """The int32 convolution of the centered operands (plus an int32 bias), through a float64 Conv."""
    w = ctx.input(w_index)
    inputs = [
        ctx.op("cast", _centered(ctx, x_index, x_zp), dtype="f64"),
        ctx.op("cast", _centered(ctx, w_index, w_zp, (w.shape[0],) + (1,) * (w.ndim - 1)), dtype="f64"),
    ]
    if bias_index is not None and ctx.has_input(bias_index):
        inputs.append(ctx.op("cast", ctx.input(bias_index), dtype="f64"))
    attrs = {k: v for k, v in ctx.attrs.items() if k in ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")}
    return ctx.op("cast", call_converter(ctx, "Conv", inputs, **attrs), dtype="i32")


@converter("MatMulInteger")
def _matmul_integer(ctx: NodeContext):
    return _integer_matmul(ctx, 0, 1, 2, 3)


@converter("ConvInteger")
def _conv_integer(ctx: NodeContext):
    return _integer_conv(ctx, 0, 1, 2, 3)


def _requantize(ctx: NodeContext, acc: Tensor, multiplier: Tensor, y_zp: Tensor, out: str) -> Tensor:
    """saturate(round(acc * multiplier + y_zero_point)) in float64, as the ONNX reference."""
    y = ctx.op("mul", ctx.op("cast", acc, dtype="f64"), ctx.op("cast", multiplier, dtype="f64"))
    y = ctx.op("add", y, ctx.op("cast", y_zp, dtype="f64"))
    return _saturate(ctx, ctx.op("round", y), out)


def _scale_product(ctx: NodeContext, x_scale: Tensor, w_scale: Tensor, y_scale: Tensor) -> Tensor:
    """x_scale * w_scale / y_scale in the scales' own type (as the reference). Constant scales are
    combined now, with numpy: the passes may reassociate float arithmetic, and a last-bit change of
    the multiplier can flip a rounding tie of the requantized result."""
    values = [constant_value(t) for t in (x_scale, w_scale, y_scale)]
    if all(v is not None for v in values):
        a, b, c = values
        return ctx.constant(np.asarray(a * b / c, dtype=a.dtype))
    return ctx.op("div", ctx.op("mul", x_scale, w_scale), y_scale)


def _as_scalar_or(ctx: NodeContext, t: Tensor, shape: tuple[int, ...] | None) -> Tensor:
    """A one-element parameter as a scalar, else reshaped to `shape` (when given)."""
    if t.type.numel == 1:
        return ctx.op("reshape", t, shape=())
    return ctx.op("reshape", t, shape=shape) if shape is not None else t


@converter("QLinearMatMul")
def _qlinear_matmul(ctx: NodeContext):
    """Inputs a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp; per-row a and per-column b parameters allowed."""
    a = ctx.input(0)
    acc = _integer_matmul(ctx, 0, 3, 2, 5)
    multiplier = _scale_product(ctx, _as_scalar_or(ctx, ctx.input(1), _row_shape(a)), _as_scalar_or(ctx, ctx.input(4), None), _as_scalar_or(ctx, ctx.input(6), None))
    y_zp = _as_scalar_or(ctx, ctx.input(7), None)
    return _requantize(ctx, acc, multiplier, y_zp, ctx.input(7).dtype)


@converter("QLinearConv")
def _qlinear_conv(ctx: NodeContext):
    """Inputs x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B (int32); w_scale / w_zp may be per output channel."""
    x, w = ctx.input(0), ctx.input(3)
    acc = _integer_conv(ctx, 0, 3, 2, 5, bias_index=8)
    channel = (1, w.shape[0]) + (1,) * (x.ndim - 2)
    multiplier = _scale_product(ctx, _as_scalar_or(ctx, ctx.input(1), None), _as_scalar_or(ctx, ctx.input(4), channel), _as_scalar_or(ctx, ctx.input(6), None))
    y_zp = _as_scalar_or(ctx, ctx.input(7), None) if ctx.has_input(7) else ctx.scalar(0, x)
    return _requantize(ctx, acc, multiplier, y_zp, ctx.input(7).dtype if ctx.has_input(7) else x.dtype)
