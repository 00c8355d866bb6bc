"""ONNX op converters: one function per ONNX op type (default domain), registered with `converter`.

Each converter gets a `NodeContext` (see graphc.frontends.onnx) and returns the node's
output tensor(s); None for optional outputs it does not compute (the importer fails
if one of those is used). Attributes that moved to inputs across opsets are read
through `_attr_or_input`. Inputs that must be known at import time (shapes, axes,
pads...) are read with ``ctx.const``/``ctx.ints``, which fail naming the node and input.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .. import dtypes
from ..ops.registry import broadcast_shapes
from ..tensor import Tensor, resolve_reshape
from .onnx import NodeContext, converter, graphc_dtype

# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def _axis(ctx: NodeContext, axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < max(rank, 1):
        raise ctx.error(f"{what} {axis} is out of range for a rank-{rank} input")
    return axis % rank if rank else 0


def _axes(ctx: NodeContext, axes: Sequence[int], rank: int, what: str = "axes") -> tuple[int, ...]:
    out = [_axis(ctx, int(a), rank, what) for a in axes]
    if len(set(out)) != len(out):
        raise ctx.error(f"{what} {list(axes)} repeat an axis")
    return tuple(out)


def _attr_or_input(ctx: NodeContext, name: str, input_index: int, since: int, what: str | None = None):
    """A list of ints that is attribute `name` before opset `since` and input `input_index` from it on.

    Returns None when absent."""
    if ctx.opset >= since:
        return ctx.ints(input_index, what or name) if ctx.has_input(input_index) else None
    value = ctx.attr(name, None)
    return None if value is None else [int(v) for v in value]


def _variadic(ctx: NodeContext, op: str) -> Tensor:
    out = ctx.input(0)
    for i in range(1, ctx.num_inputs):
        out = ctx.op(op, out, ctx.input(i))
    return out


def _spatial_pads(ctx: NodeContext, in_sizes, kernel, strides, dilations) -> tuple[list[int], list[int]]:
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


class _Window:
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
        begin, end = _spatial_pads(ctx, x.shape[2:], kernel, strides, dilations)
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


# ---------------------------------------------------------------------------------------
# elementwise
# ---------------------------------------------------------------------------------------
_UNARY = {
    "Relu": "relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Erf": "erf",
    "Exp": "exp",
    "Log": "log",
    "Sqrt": "sqrt",
    "Reciprocal": "reciprocal",
    "Neg": "neg",
    "Abs": "abs",
    "Not": "logical_not",
}
_BINARY = {
    "Add": "add",
    "Sub": "sub",
    "Mul": "mul",
    "Div": "div",
    "Less": "less",
    "Greater": "greater",
    "LessOrEqual": "less_equal",
    "GreaterOrEqual": "greater_equal",
    "And": "logical_and",
    "Or": "logical_or",
    "Equal": "equal",
    "Xor": "not_equal",  # on bool tensors
}


def _unary(graphc_op: str):
    return lambda ctx: ctx.op(graphc_op, ctx.input(0))


def _binary(graphc_op: str):
    return lambda ctx: ctx.op(graphc_op, ctx.input(0), ctx.input(1))


for _onnx, _graphc in _UNARY.items():
    converter(_onnx)(_unary(_graphc))
for _onnx, _graphc in _BINARY.items():
    converter(_onnx)(_binary(_graphc))


@converter("Pow")
def _pow(ctx: NodeContext):
    x, y = ctx.input(0), ctx.input(1)
    if y.dtype != x.dtype:  # opset 12+: the exponent may have another type; the result has the base's
        y = ctx.op("cast", y, dtype=x.dtype)
    return ctx.op("pow", x, y)


@converter("Max")
def _max(ctx: NodeContext):
    return _variadic(ctx, "maximum")


@converter("Min")
def _min(ctx: NodeContext):
    return _variadic(ctx, "minimum")


@converter("Sum")
def _sum(ctx: NodeContext):
    return _variadic(ctx, "add")


@converter("Mean")
def _mean(ctx: NodeContext):
    total = _variadic(ctx, "add")
    return total if ctx.num_inputs == 1 else ctx.op("div", total, ctx.scalar(ctx.num_inputs, total))


@converter("Where")
def _where(ctx: NodeContext):
    return ctx.op("where", ctx.input(0), ctx.input(1), ctx.input(2))


@converter("LeakyRelu")
def _leaky_relu(ctx: NodeContext):
    x = ctx.input(0)
    alpha = float(ctx.attr("alpha"))
    return ctx.op("where", ctx.op("greater", x, ctx.scalar(0, x)), x, ctx.op("mul", x, ctx.scalar(alpha, x)))


@converter("PRelu")
def _prelu(ctx: NodeContext):
    x, slope = ctx.input(0), ctx.input(1)
    return ctx.op("where", ctx.op("greater", x, ctx.scalar(0, x)), x, ctx.op("mul", x, slope))


@converter("Elu")
def _elu(ctx: NodeContext):
    x = ctx.input(0)
    alpha = float(ctx.attr("alpha"))
    neg = ctx.op("mul", ctx.op("sub", ctx.op("exp", x), ctx.scalar(1, x)), ctx.scalar(alpha, x))
    return ctx.op("where", ctx.op("greater", x, ctx.scalar(0, x)), x, neg)


@converter("HardSigmoid")
def _hard_sigmoid(ctx: NodeContext):
    x = ctx.input(0)
    return _hard_sigmoid_of(ctx, x, float(ctx.attr("alpha")), float(ctx.attr("beta")))


def _hard_sigmoid_of(ctx: NodeContext, x: Tensor, alpha: float, beta: float) -> Tensor:
    y = ctx.op("add", ctx.op("mul", x, ctx.scalar(alpha, x)), ctx.scalar(beta, x))
    return ctx.op("minimum", ctx.op("maximum", y, ctx.scalar(0, x)), ctx.scalar(1, x))


@converter("HardSwish")
def _hard_swish(ctx: NodeContext):
    x = ctx.input(0)
    return ctx.op("mul", x, _hard_sigmoid_of(ctx, x, 1.0 / 6.0, 0.5))


@converter("Softplus")
def _softplus(ctx: NodeContext):
    x = ctx.input(0)  # log(1 + exp(x)) = relu(x) + log(1 + exp(-|x|)), without overflow
    tail = ctx.op("log", ctx.op("add", ctx.op("exp", ctx.op("neg", ctx.op("abs", x))), ctx.scalar(1, x)))
    return ctx.op("add", ctx.op("relu", x), tail)


@converter("Gelu")
def _gelu(ctx: NodeContext):
    approximate = ctx.attr("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise ctx.error(f"unknown approximate {approximate!r}")
    return ctx.op("gelu", ctx.input(0), approximate=approximate)


@converter("Clip")
def _clip(ctx: NodeContext):
    x = ctx.input(0)
    if ctx.opset < 11:
        lo, hi = ctx.attr("min", None), ctx.attr("max", None)
        lo = None if lo is None else ctx.scalar(lo, x)
        hi = None if hi is None else ctx.scalar(hi, x)
    else:
        lo = ctx.input(1) if ctx.has_input(1) else None
        hi = ctx.input(2) if ctx.has_input(2) else None
    if lo is not None:
        x = ctx.op("maximum", x, lo)
    if hi is not None:
        x = ctx.op("minimum", x, hi)
    return x


@converter("Cast")
def _cast(ctx: NodeContext):
    x = ctx.input(0)
    dtype = graphc_dtype(int(ctx.attr("to")), f"{ctx.importer.where}: {ctx.describe()}: attribute 'to'")
    return x if dtype == x.dtype else ctx.op("cast", x, dtype=dtype)


@converter("CastLike")
def _cast_like(ctx: NodeContext):
    x, like = ctx.input(0), ctx.input(1)
    return x if like.dtype == x.dtype else ctx.op("cast", x, dtype=like.dtype)


@converter("Identity")
def _identity(ctx: NodeContext):
    return ctx.input(0)


@converter("Dropout")
def _dropout(ctx: NodeContext):
    """Inference: the identity. The mask output is not computed."""
    if ctx.opset >= 12 and ctx.has_input(2):
        if not ctx.is_const(2) or bool(np.asarray(ctx.const(2)).reshape(-1)[0]):
            raise ctx.error("training_mode must be a constant false: graphc imports Dropout for inference only")
    ctx.reject_used_outputs(1, " (Dropout mask; graphc imports Dropout for inference only)")
    return ctx.input(0)


# ---------------------------------------------------------------------------------------
# linear algebra, convolution, pooling, normalization
# ---------------------------------------------------------------------------------------


@converter("MatMul")
def _matmul(ctx: NodeContext):
    return ctx.op("matmul", ctx.input(0), ctx.input(1))


@converter("Gemm")
def _gemm(ctx: NodeContext):
    """Y = alpha * A' @ B' + beta * C, with linear(x, w[N,K]) = x @ w.T."""
    a, b = ctx.input(0), ctx.input(1)
    if a.ndim != 2 or b.ndim != 2:
        raise ctx.error(f"Gemm needs 2-D A and B, got {list(a.shape)} and {list(b.shape)}")
    if ctx.attr("transA"):
        a = ctx.op("transpose", a, perm=(1, 0))
    w = b if ctx.attr("transB") else ctx.op("transpose", b, perm=(1, 0))
    y = ctx.op("linear", a, w)
    alpha, beta = float(ctx.attr("alpha")), float(ctx.attr("beta"))
    if alpha != 1.0:
        y = ctx.op("mul", y, ctx.scalar(alpha, y))
    if ctx.has_input(2) and beta != 0.0:
        c = ctx.input(2)
        if beta != 1.0:
            c = ctx.op("mul", c, ctx.scalar(beta, c))
        y = ctx.op("add", y, c)
    return y


@converter("Conv")
def _conv(ctx: NodeContext):
    x, w = ctx.input(0), ctx.input(1)
    if w.ndim != x.ndim:
        raise ctx.error(f"weight {list(w.shape)} and input {list(x.shape)} ranks differ")
    win = _Window(ctx, x, ctx.attr("kernel_shape", None) or w.shape[2:])
    if tuple(ctx.attr("kernel_shape", None) or w.shape[2:]) != tuple(w.shape[2:]):
        raise ctx.error(f"kernel_shape {ctx.attr('kernel_shape')} does not match the weight's {list(w.shape[2:])}")
    y = ctx.op(
        "conv2d", win.lift(ctx, x), win.lift(ctx, w),
        stride=win.stride, pad=win.pad, dilation=win.dilation, groups=int(ctx.attr("group")),
    )
    if ctx.has_input(2):
        bias = ctx.input(2)
        y = ctx.op("add", y, ctx.op("reshape", bias, shape=(1, bias.shape[0], 1, 1)))
    return win.lower(ctx, y)


@converter("MaxPool")
def _max_pool(ctx: NodeContext):
    x = ctx.input(0)
    ctx.reject_used_outputs(1, " (MaxPool indices)")
    win = _Window(ctx, x, ctx.attr("kernel_shape"))
    lowest = -math.inf if dtypes.is_float(x.dtype) else int(np.iinfo(dtypes.to_numpy(x.dtype)).min)
    y = ctx.op(
        "max_pool2d", win.pad_explicitly_if_wide(ctx, win.lift(ctx, x), lowest),
        kernel=win.kernel, stride=win.stride, pad=win.pad, dilation=win.dilation, ceil_mode=bool(ctx.attr("ceil_mode", 0)),
    )
    return win.lower(ctx, y)


@converter("AveragePool")
def _avg_pool(ctx: NodeContext):
    x = ctx.input(0)
    win = _Window(ctx, x, ctx.attr("kernel_shape"))
    if any(d != 1 for d in win.dilation):
        raise ctx.error(f"dilated average pooling (dilations {list(win.dilation)}) is not supported")
    include_pad = bool(ctx.attr("count_include_pad", 0))
    lifted = win.pad_explicitly_if_wide(ctx, win.lift(ctx, x), 0.0 if include_pad else None)
    y = ctx.op(
        "avg_pool2d", lifted,
        kernel=win.kernel, stride=win.stride, pad=win.pad,
        ceil_mode=bool(ctx.attr("ceil_mode", 0)), count_include_pad=include_pad,
    )
    return win.lower(ctx, y)


@converter("GlobalAveragePool")
def _global_avg_pool(ctx: NodeContext):
    x = ctx.input(0)
    return ctx.op("mean", x, axes=tuple(range(2, x.ndim)), keepdims=True)


@converter("GlobalMaxPool")
def _global_max_pool(ctx: NodeContext):
    x = ctx.input(0)
    return ctx.op("max", x, axes=tuple(range(2, x.ndim)), keepdims=True)


@converter("BatchNormalization")
def _batch_norm(ctx: NodeContext):
    if ctx.opset < 9 and ctx.attr("spatial", 1) != 1:
        raise ctx.error("spatial=0 batch normalization is not supported")
    if ctx.opset >= 14 and ctx.attr("training_mode", 0):
        raise ctx.error("training_mode=1: graphc imports BatchNormalization for inference only")
    ctx.reject_used_outputs(1, " (BatchNormalization training statistics)")
    x = ctx.input(0)
    return ctx.op("batch_norm", x, ctx.input(1), ctx.input(2), ctx.input(3), ctx.input(4), eps=float(ctx.attr("epsilon")))


@converter("LayerNormalization")
def _layer_norm(ctx: NodeContext):
    x, scale = ctx.input(0), ctx.input(1)
    ctx.reject_used_outputs(1, " (LayerNormalization mean / inverse std)")
    axis = _axis(ctx, int(ctx.attr("axis")), x.ndim)
    norm_shape = tuple(x.shape[axis:])
    if scale.shape != norm_shape:
        scale = ctx.op("broadcast_to", scale, shape=norm_shape)
    if ctx.has_input(2):
        bias = ctx.input(2)
        if bias.shape != norm_shape:
            bias = ctx.op("broadcast_to", bias, shape=norm_shape)
    else:
        bias = ctx.constant(np.zeros(norm_shape, dtype=dtypes.to_numpy(x.dtype)))
    return ctx.op("layer_norm", x, scale, bias, axis=axis, eps=float(ctx.attr("epsilon")))


def _softmax(graphc_op: str):
    def convert(ctx: NodeContext):
        x = ctx.input(0)
        axis = _axis(ctx, int(ctx.attr("axis")), x.ndim)
        if ctx.opset >= 13 or axis == x.ndim - 1:
            return ctx.op(graphc_op, x, axis=axis)
        # opset < 13: the input is coerced to 2-D [prod(d[:axis]), prod(d[axis:])]
        flat = ctx.op("reshape", x, shape=(math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))
        return ctx.op("reshape", ctx.op(graphc_op, flat, axis=1), shape=x.shape)

    return convert


converter("Softmax")(_softmax("softmax"))
converter("LogSoftmax")(_softmax("log_softmax"))


# ---------------------------------------------------------------------------------------
# reductions
# ---------------------------------------------------------------------------------------
# ONNX op -> (axes-as-input opset, how to compute it from graphc ops)
_REDUCE_AXES_INPUT_SINCE = {"ReduceSum": 13}


def _reduce_axes(ctx: NodeContext, x: Tensor):
    """Normalized axes; None means all; the string "noop" means return x unchanged."""
    since = _REDUCE_AXES_INPUT_SINCE.get(ctx.op_type, 18)
    axes = _attr_or_input(ctx, "axes", 1, since)
    if not axes:
        noop = ctx.opset >= since and ctx.attr("noop_with_empty_axes", 0)
        return "noop" if noop else None
    return tuple(sorted(_axes(ctx, axes, x.ndim)))


def _reduction(fn):
    def convert(ctx: NodeContext):
        x = ctx.input(0)
        axes = _reduce_axes(ctx, x)
        if axes == "noop":
            return x
        return fn(ctx, x, axes, bool(ctx.attr("keepdims", 1)))

    return convert


def _simple_reduce(graphc_op: str):
    return _reduction(lambda ctx, x, axes, keepdims: ctx.op(graphc_op, x, axes=axes, keepdims=keepdims))


converter("ReduceSum")(_simple_reduce("sum"))
converter("ReduceMean")(_simple_reduce("mean"))
converter("ReduceMax")(_simple_reduce("max"))
converter("ReduceMin")(_simple_reduce("min"))


@converter("ReduceSumSquare")
@_reduction
def _reduce_sum_square(ctx, x, axes, keepdims):
    return ctx.op("sum", ctx.op("mul", x, x), axes=axes, keepdims=keepdims)


@converter("ReduceL1")
@_reduction
def _reduce_l1(ctx, x, axes, keepdims):
    return ctx.op("sum", ctx.op("abs", x), axes=axes, keepdims=keepdims)


@converter("ReduceL2")
@_reduction
def _reduce_l2(ctx, x, axes, keepdims):
    return ctx.op("sqrt", ctx.op("sum", ctx.op("mul", x, x), axes=axes, keepdims=keepdims))


@converter("ReduceLogSum")
@_reduction
def _reduce_log_sum(ctx, x, axes, keepdims):
    return ctx.op("log", ctx.op("sum", x, axes=axes, keepdims=keepdims))


@converter("ReduceLogSumExp")
@_reduction
def _reduce_log_sum_exp(ctx, x, axes, keepdims):
    m = ctx.op("max", x, axes=axes, keepdims=True)  # shift by the max so exp cannot overflow
    s = ctx.op("log", ctx.op("sum", ctx.op("exp", ctx.op("sub", x, m)), axes=axes, keepdims=True))
    y = ctx.op("add", s, m)
    if not keepdims:
        y = ctx.op("squeeze", y, axes=axes if axes is not None else tuple(range(x.ndim)))
    return y


# ---------------------------------------------------------------------------------------
# shapes and data movement
# ---------------------------------------------------------------------------------------


@converter("Flatten")
def _flatten(ctx: NodeContext):
    x = ctx.input(0)
    axis = int(ctx.attr("axis"))
    if not -x.ndim <= axis <= x.ndim:
        raise ctx.error(f"axis {axis} is out of range for a rank-{x.ndim} input")
    axis = axis + x.ndim if axis < 0 else axis
    shape = (math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))
    return x if shape == x.shape else ctx.op("reshape", x, shape=shape)


@converter("Reshape")
def _reshape(ctx: NodeContext):
    x = ctx.input(0)
    target = ctx.ints(1, "shape")
    allowzero = ctx.opset >= 14 and bool(ctx.attr("allowzero", 0))
    shape = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= x.ndim:
                raise ctx.error(f"shape {target}: 0 at position {i} copies a dim the rank-{x.ndim} input does not have")
            d = x.shape[i]
        elif d < -1:
            raise ctx.error(f"shape {target} has an invalid dim {d}")
        shape.append(d)
    try:
        shape = resolve_reshape(x.shape, shape)
    except Exception as e:
        raise ctx.error(str(e)) from None
    if math.prod(shape) != x.type.numel:
        raise ctx.error(f"cannot reshape {list(x.shape)} ({x.type.numel} elements) to {target}")
    return x if tuple(shape) == x.shape else ctx.op("reshape", x, shape=tuple(shape))


@converter("Transpose")
def _transpose(ctx: NodeContext):
    x = ctx.input(0)
    perm = ctx.attr("perm", None)
    perm = tuple(reversed(range(x.ndim))) if perm is None else _axes(ctx, perm, x.ndim, "perm")
    if sorted(perm) != list(range(x.ndim)):
        raise ctx.error(f"perm {list(perm)} is not a permutation of {x.ndim} axes")
    return x if perm == tuple(range(x.ndim)) else ctx.op("transpose", x, perm=perm)


@converter("Squeeze")
def _squeeze(ctx: NodeContext):
    x = ctx.input(0)
    axes = _attr_or_input(ctx, "axes", 1, 13)
    if not axes:  # absent (or empty): every dim of size 1
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    axes = tuple(sorted(_axes(ctx, axes, x.ndim)))
    for a in axes:
        if x.shape[a] != 1:
            raise ctx.error(f"cannot squeeze axis {a} of size {x.shape[a]} (input {list(x.shape)})")
    return ctx.op("squeeze", x, axes=axes) if axes else x


@converter("Unsqueeze")
def _unsqueeze(ctx: NodeContext):
    x = ctx.input(0)
    axes = _attr_or_input(ctx, "axes", 1, 13)
    if axes is None:
        raise ctx.error("needs axes")
    out_rank = x.ndim + len(axes)
    return ctx.op("unsqueeze", x, axes=tuple(sorted(_axes(ctx, axes, out_rank))))


@converter("Concat")
def _concat(ctx: NodeContext):
    inputs = [ctx.input(i) for i in range(ctx.num_inputs)]
    axis = _axis(ctx, int(ctx.attr("axis")), inputs[0].ndim)
    nonempty = [t for t in inputs if t.shape[axis] != 0] or inputs[:1]
    if len(nonempty) == 1:
        return nonempty[0]
    return ctx.op("concat", *nonempty, axis=axis)


@converter("Split")
def _split(ctx: NodeContext):
    x = ctx.input(0)
    axis = _axis(ctx, int(ctx.attr("axis")), x.ndim)
    size = x.shape[axis]
    n = ctx.num_outputs
    sections = _attr_or_input(ctx, "split", 1, 13)
    if not sections:
        if ctx.opset >= 18 and ctx.has_attr("num_outputs"):
            n = int(ctx.attr("num_outputs"))
            chunk = -(-size // n)  # ceil: the last chunk may be smaller
            sections = [chunk] * (n - 1) + [size - chunk * (n - 1)]
            if sections[-1] < 0:
                raise ctx.error(f"cannot split size {size} into {n} outputs")
        else:
            if size % n:
                raise ctx.error(f"cannot split size {size} evenly into {n} outputs")
            sections = [size // n] * n
    if sum(sections) != size:
        raise ctx.error(f"split sizes {list(sections)} do not add up to the axis size {size}")
    if len(sections) != ctx.num_outputs:
        raise ctx.error(f"{len(sections)} split sizes for {ctx.num_outputs} outputs")
    if len(sections) == 1:
        return x
    return ctx.op("split", x, axis=axis, sections=tuple(int(s) for s in sections))


@converter("Slice")
def _slice(ctx: NodeContext):
    x = ctx.input(0)
    if ctx.opset < 10:
        starts, ends = list(ctx.attr("starts")), list(ctx.attr("ends"))
        axes, steps = ctx.attr("axes", None), None
    else:
        starts, ends = ctx.ints(1, "starts"), ctx.ints(2, "ends")
        axes = ctx.ints(3, "axes") if ctx.has_input(3) else None
        steps = ctx.ints(4, "steps") if ctx.has_input(4) else None
    axes = list(range(len(starts))) if axes is None else list(axes)
    steps = [1] * len(starts) if steps is None else list(steps)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ctx.error(f"starts {starts}, ends {ends}, axes {axes} and steps {steps} differ in length")
    if any(s == 0 for s in steps):
        raise ctx.error(f"steps {steps} contain 0")
    axes = list(_axes(ctx, axes, x.ndim))
    # clamp to [-dim-1, dim]: the same slice, without INT64_MAX sentinels in the IR
    starts = [max(-d - 1, min(d, int(s))) for s, d in zip(starts, (x.shape[a] for a in axes))]
    ends = [max(-d - 1, min(d, int(e))) for e, d in zip(ends, (x.shape[a] for a in axes))]
    if not axes:
        return x
    return ctx.op("slice", x, starts=tuple(starts), ends=tuple(ends), axes=tuple(axes), steps=tuple(steps))


@converter("Gather")
def _gather(ctx: NodeContext):
    x, idx = ctx.input(0), ctx.input(1)
    axis = _axis(ctx, int(ctx.attr("axis")), x.ndim)
    if idx.dtype not in ("i64", "i32"):
        raise ctx.error(f"indices must be int32 or int64, got {idx.dtype}")
    return ctx.op("gather", x, idx, axis=axis)


@converter("Expand")
def _expand(ctx: NodeContext):
    x = ctx.input(0)
    shape = ctx.ints(1, "shape")
    try:
        out = broadcast_shapes(x.shape, shape)
    except Exception:
        raise ctx.error(f"input {list(x.shape)} cannot be expanded to {shape}") from None
    return x if out == x.shape else ctx.op("broadcast_to", x, shape=out)


@converter("Tile")
def _tile(ctx: NodeContext):
    x = ctx.input(0)
    repeats = ctx.ints(1, "repeats")
    if len(repeats) != x.ndim:
        raise ctx.error(f"repeats {repeats} should have one entry per input dim ({x.ndim})")
    return x if all(r == 1 for r in repeats) else ctx.op("tile", x, repeats=tuple(repeats))


@converter("Pad")
def _pad(ctx: NodeContext):
    x = ctx.input(0)
    rank = x.ndim
    mode = ctx.attr("mode", "constant") or "constant"
    if mode not in ("constant", "reflect", "edge"):
        raise ctx.error(f"pad mode {mode!r} is not supported (constant, reflect, edge are)")
    if ctx.opset < 11:
        pads = [int(p) for p in ctx.attr("pads")]
        value = float(ctx.attr("value", 0.0))
    else:
        pads = ctx.ints(1, "pads")
        value = 0
        if ctx.has_input(2):
            v = np.asarray(ctx.const(2, "constant_value")).reshape(-1)
            value = v[0].item() if v.size else 0
        if ctx.opset >= 18 and ctx.has_input(3):
            axes = _axes(ctx, ctx.ints(3, "axes"), rank)
            if len(pads) != 2 * len(axes):
                raise ctx.error(f"pads {pads} should have {2 * len(axes)} entries for axes {list(axes)}")
            full = [0] * (2 * rank)
            for k, a in enumerate(axes):
                full[a], full[rank + a] = pads[k], pads[len(axes) + k]
            pads = full
    if len(pads) != 2 * rank:
        raise ctx.error(f"pads {pads} should have {2 * rank} entries for a rank-{rank} input")
    if any(p < 0 for p in pads):  # negative pads crop: slice first, then pad what is left
        begins, ends = pads[:rank], pads[rank:]
        axes = [a for a in range(rank) if begins[a] < 0 or ends[a] < 0]
        starts = tuple(max(0, -begins[a]) for a in axes)
        stops = tuple(x.shape[a] - max(0, -ends[a]) for a in axes)
        x = ctx.op("slice", x, starts=starts, ends=stops, axes=tuple(axes), steps=(1,) * len(axes))
        pads = [max(0, p) for p in pads]
    if not any(pads):
        return x
    value = float(value) if dtypes.is_float(x.dtype) else (bool(value) if x.dtype == "bool" else int(value))
    return ctx.op("pad", x, pads=tuple(pads), mode=mode, value=value)


# ---------------------------------------------------------------------------------------
# ops that produce constants at import time (shapes are static)
# ---------------------------------------------------------------------------------------


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
        from .onnx import _sparse_to_array

        array = _sparse_to_array(ctx.node.attribute[0].sparse_tensor, where, ctx.importer.base_dir)
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

