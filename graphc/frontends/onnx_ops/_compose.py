"""Helpers for converters that decompose an ONNX op into several graphc ops (RNNs, control flow,
sequences, quantization): per-index slicing and stacking, and reuse of other ONNX ops' converters."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...tensor import Tensor
from ..onnx import CONVERTERS, NodeContext


def call_converter(ctx: NodeContext, op_type: str, inputs: Sequence[Tensor | None], domain: str = "", **attrs):
    """Convert a synthesized ONNX node `op_type(inputs) {attrs}` with that op's own converter.

    Keeps one definition of each ONNX op's semantics: an LSTM's LeakyRelu activation or
    DynamicQuantizeLinear's quantization step is what the LeakyRelu / QuantizeLinear
    converters compute. The node is located under `ctx` (``<node>/<op_type>``) and sees
    the model's opset for `domain`."""
    from onnx import helper

    key = (domain, op_type)
    if key not in CONVERTERS:
        raise ctx.error(f"needs ONNX {op_type}, which graphc cannot convert")
    label = f"{ctx.name}/{op_type}"
    names = [f"{label}:{i}" if t is not None else "" for i, t in enumerate(inputs)]
    node = helper.make_node(op_type, names, [f"{label}:out"], name=label, domain=domain, **attrs)
    inner = list(inputs)
    while inner and inner[-1] is None:
        inner.pop()
    return CONVERTERS[key](NodeContext(ctx.importer, node, 0, inner))


def take(ctx: NodeContext, x: Tensor, axis: int, index: int) -> Tensor:
    """x[..., index, ...] along `axis` (the axis dropped)."""
    part = ctx.op("slice", x, starts=(index,), ends=(index + 1,), axes=(axis,), steps=(1,))
    return ctx.op("squeeze", part, axes=(axis,))


def unstack(ctx: NodeContext, x: Tensor, axis: int) -> list[Tensor]:
    """The slices of x along `axis`, each without that axis (one split node)."""
    n = x.shape[axis]
    if n == 1:
        return [ctx.op("squeeze", x, axes=(axis,))]
    parts = ctx.op("split", x, axis=axis, sections=(1,) * n)
    return [ctx.op("squeeze", p, axes=(axis,)) for p in parts]


def stack(ctx: NodeContext, xs: Sequence[Tensor], axis: int) -> Tensor:
    """np.stack: the tensors (one shape) joined along a new `axis`."""
    parts = [ctx.op("unsqueeze", x, axes=(axis,)) for x in xs]
    return parts[0] if len(parts) == 1 else ctx.op("concat", *parts, axis=axis)


def split_even(ctx: NodeContext, x: Tensor, axis: int, n: int) -> list[Tensor]:
    """x cut into n equal parts along `axis` (gates of a recurrent weight, halves of a bias)."""
    if n == 1:
        return [x]
    return list(ctx.op("split", x, axis=axis, sections=(x.shape[axis] // n,) * n))


def scalar_value(ctx: NodeContext, i: int, what: str):
    """The single element of constant input i as a Python number."""
    value = np.asarray(ctx.const(i, what)).reshape(-1)
    if value.size != 1:
        raise ctx.error(f"input {i} ({what}) must have one element, got {value.size}")
    return value[0].item()
