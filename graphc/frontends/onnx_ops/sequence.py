"""ONNX sequence and optional ops, resolved at import time.

Shapes are static, so a sequence is a Python list of graphc tensors (`TensorSequence`)
while the model is converted: sequence ops only rearrange that list, and positions
(SequenceAt / SequenceInsert / SequenceErase) must be import-time constants. An optional
holding a value is the value itself; an empty one is `EmptyOptional`. graphc graphs take
and return tensors only, so sequences and optionals live between nodes: a graph input or
output of those types is an import error.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...tensor import Tensor
from ..onnx import NodeContext, converter, graphc_dtype
from ._compose import scalar_value, split_even, stack


class TensorSequence:
    """An ONNX sequence of tensors: graphc Tensors plus their element type (known for empty ones too).

    Not a list subclass: converters return lists for multi-output nodes."""

    def __init__(self, items=(), dtype: str | None = None):
        self.items: list[Tensor] = list(items)
        self.dtype = dtype if dtype is not None else (self.items[0].dtype if self.items else None)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]

    def __iter__(self):
        return iter(self.items)

    def __repr__(self) -> str:
        return f"TensorSequence({', '.join(str(t.type) for t in self.items)})"


@dataclass(frozen=True)
class EmptyOptional:
    """An optional without a value (``Optional()`` with no input)."""

    what: str  # the optional's declared type, for messages


def sequence_input(ctx: NodeContext, i: int) -> TensorSequence:
    value = ctx.input(i)
    if not isinstance(value, TensorSequence):
        raise ctx.error(f"input {i} ({ctx.input_name(i)!r}) must be a sequence, got {_kind(value)}")
    return value


def tensor_input(ctx: NodeContext, i: int) -> Tensor:
    value = ctx.input(i)
    if not isinstance(value, Tensor):
        raise ctx.error(f"input {i} ({ctx.input_name(i)!r}) must be a tensor, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if isinstance(value, TensorSequence):
        return f"a sequence of {len(value)} tensor(s)"
    if isinstance(value, EmptyOptional):
        return "an empty optional"
    return f"a {type(value).__name__}"


def _position(ctx: NodeContext, i: int, length: int, allow_end: bool) -> int:
    """A constant position in [-length, length) (or up to `length` inclusive for inserts), normalized."""
    pos = int(scalar_value(ctx, i, "position"))
    top = length if allow_end else length - 1
    if not -length <= pos <= top:
        raise ctx.error(f"position {pos} is out of range for a sequence of {length} tensor(s) (allowed: [{-length}, {top}])")
    return pos + length if pos < 0 else pos


def _check_dtype(ctx: NodeContext, seq: TensorSequence, t: Tensor) -> None:
    if seq.dtype is not None and t.dtype != seq.dtype:
        raise ctx.error(f"cannot put a {t.dtype} tensor in a sequence of {seq.dtype}")


@converter("SequenceEmpty")
def _sequence_empty(ctx: NodeContext):
    code = int(ctx.attr("dtype", 1) or 1)
    return TensorSequence([], graphc_dtype(code, f"{ctx.importer.where}: {ctx.describe()}: attribute 'dtype'"))


@converter("SequenceConstruct")
def _sequence_construct(ctx: NodeContext):
    items = [tensor_input(ctx, i) for i in range(ctx.num_inputs)]
    if len({t.dtype for t in items}) > 1:
        raise ctx.error(f"the tensors have different element types ({', '.join(t.dtype for t in items)})")
    return TensorSequence(items)


@converter("SequenceInsert")
def _sequence_insert(ctx: NodeContext):
    seq, t = sequence_input(ctx, 0), tensor_input(ctx, 1)
    _check_dtype(ctx, seq, t)
    pos = _position(ctx, 2, len(seq), allow_end=True) if ctx.has_input(2) else len(seq)
    return TensorSequence([*seq[:pos], t, *seq[pos:]], t.dtype)


@converter("SequenceErase")
def _sequence_erase(ctx: NodeContext):
    seq = sequence_input(ctx, 0)
    if not seq:
        raise ctx.error("cannot erase from an empty sequence")
    pos = _position(ctx, 1, len(seq), allow_end=False) if ctx.has_input(1) else len(seq) - 1
    return TensorSequence([*seq[:pos], *seq[pos + 1 :]], seq.dtype)


@converter("SequenceAt")
def _sequence_at(ctx: NodeContext):
    seq = sequence_input(ctx, 0)
    return seq[_position(ctx, 1, len(seq), allow_end=False)]


@converter("SequenceLength")
def _sequence_length(ctx: NodeContext):
    return ctx.constant(len(sequence_input(ctx, 0)), dtype="i64")


@converter("SplitToSequence")
def _split_to_sequence(ctx: NodeContext):
    """Without `split`: pieces of size 1 (keepdims=0 drops the axis); a scalar: pieces of that size (the
    last may be shorter); a vector: those sizes."""
    x = tensor_input(ctx, 0)
    axis = int(ctx.attr("axis", 0))
    if not -x.ndim <= axis < x.ndim:
        raise ctx.error(f"axis {axis} is out of range for a rank-{x.ndim} input")
    axis %= x.ndim
    size = x.shape[axis]
    if not ctx.has_input(1):
        pieces = split_even(ctx, x, axis, size) if size > 1 else [x]
        if not int(ctx.attr("keepdims", 1)):
            pieces = [ctx.op("squeeze", p, axes=(axis,)) for p in pieces]
        return TensorSequence(pieces, x.dtype)
    split = ctx.const(1, "split")
    if split.ndim == 0:
        chunk = int(split)
        if chunk <= 0:
            raise ctx.error(f"split {chunk} must be positive")
        sections = [chunk] * (size // chunk) + ([size % chunk] if size % chunk else [])
    else:
        sections = [int(s) for s in split.reshape(-1)]
        if sum(sections) != size or any(s < 0 for s in sections):
            raise ctx.error(f"split sizes {sections} do not add up to the axis size {size}")
    if len(sections) == 1:
        return TensorSequence([x])
    return TensorSequence(ctx.op("split", x, axis=axis, sections=tuple(sections)), x.dtype)


@converter("ConcatFromSequence")
def _concat_from_sequence(ctx: NodeContext):
    seq = sequence_input(ctx, 0)
    if not seq:
        raise ctx.error("cannot concatenate an empty sequence")
    new_axis = bool(ctx.attr("new_axis", 0))
    rank = seq[0].ndim + new_axis
    axis = int(ctx.attr("axis"))
    if not -rank <= axis < rank:
        raise ctx.error(f"axis {axis} is out of range for rank {rank}")
    axis %= rank
    if new_axis:
        return stack(ctx, list(seq), axis)
    return seq[0] if len(seq) == 1 else ctx.op("concat", *seq, axis=axis)


@converter("SequenceMap")
def _sequence_map(ctx: NodeContext):
    """The body once per element: sequence inputs give their i-th element, tensor inputs themselves;
    each body output collects into a sequence."""
    seq = sequence_input(ctx, 0)
    extras = [ctx.input(i) for i in range(1, ctx.num_inputs)]
    lengths = {len(e) for e in extras if isinstance(e, TensorSequence)} | {len(seq)}
    if len(lengths) > 1:
        raise ctx.error(f"the input sequences differ in length ({sorted(lengths)})")
    if not seq:
        raise ctx.error("mapping over an empty sequence is not supported (the element types of the results are unknown)")
    outs: list[list[Tensor]] = [[] for _ in range(ctx.num_outputs)]
    for i in range(len(seq)):
        args = [seq[i]] + [e[i] if isinstance(e, TensorSequence) else e for e in extras]
        for collected, value in zip(outs, ctx.subgraph("body", args)):
            collected.append(value)
    return [TensorSequence(values) for values in outs]


# ---------------------------------------------------------------------------------------
# optionals
# ---------------------------------------------------------------------------------------
@converter("Optional")
def _optional(ctx: NodeContext):
    if ctx.has_input(0):
        return ctx.input(0)
    type_proto = ctx.attr("type", None)
    return EmptyOptional(str(type_proto).replace("\n", " ").strip() if type_proto is not None else "unknown type")


@converter("OptionalHasElement")
def _optional_has_element(ctx: NodeContext):
    present = ctx.has_input(0) and not isinstance(ctx.input(0), EmptyOptional)
    return ctx.constant(present, dtype="bool")


@converter("OptionalGetElement")
def _optional_get_element(ctx: NodeContext):
    value = ctx.input(0)
    if isinstance(value, EmptyOptional):
        raise ctx.error("the optional is empty (it holds no value to get)")
    return value
