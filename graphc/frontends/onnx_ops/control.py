"""Control flow (If, Loop, Scan) with static shapes: bodies are converted inline.

* If: a condition known at import time takes its branch; otherwise both branches are
  converted and their outputs selected with `where` (their types must agree, else the
  condition must be known: a `NonConstantInputError`, which `SpecializingModel` resolves
  by specializing on the inputs it depends on).
* Loop: unrolled while the trip count and the condition are known. A condition computed
  at run time still unrolls when the trip count is known and the loop has no scan outputs:
  every iteration runs, and the carried values freeze once the condition turns false.
* Scan: unrolled over the static sequence length (directions and axes of every scan
  input and output; opset 8's batched form too).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...errors import GraphcError, NonConstantInputError
from ...tensor import Tensor
from ..onnx import NodeContext, constant_value, converter, graph_inputs_of
from ._compose import stack, take, unstack
from .sequence import EmptyOptional, TensorSequence

# Unrolling more iterations than this is refused (the graph would grow without bound).
MAX_UNROLL = 4096


def _describe_value(value: Any) -> str:
    if isinstance(value, Tensor):
        return str(value.type)
    if isinstance(value, TensorSequence):
        return f"sequence[{', '.join(str(t.type) for t in value)}]"
    if isinstance(value, EmptyOptional):
        return "empty optional"
    return type(value).__name__


def _same_type(a: Any, b: Any) -> bool:
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return a.type == b.type
    if isinstance(a, TensorSequence) and isinstance(b, TensorSequence):
        return len(a) == len(b) and all(x.type == y.type for x, y in zip(a, b))
    return isinstance(a, EmptyOptional) and isinstance(b, EmptyOptional)


def _select(ctx: NodeContext, cond: Tensor, a: Any, b: Any) -> Any:
    """where(cond, a, b) for tensors, element by element for sequences (types already agree)."""
    if isinstance(a, Tensor):
        return a if a.value is b.value else ctx.op("where", cond, a, b)
    if isinstance(a, TensorSequence):
        return TensorSequence([_select(ctx, cond, x, y) for x, y in zip(a, b)], a.dtype)
    return a


def _needs_constant(ctx: NodeContext, value: Tensor, what: str, why: str) -> NonConstantInputError:
    """The error for a value computed at run time that must be known at import time because of `why`
    (naming the graph inputs it depends on, so `SpecializingModel` can specialize on them)."""
    sources = graph_inputs_of(value)
    return NonConstantInputError(
        f"{ctx.importer.where}: {ctx.describe()}: {why}, so {what} must be known at import time, but it depends "
        f"on graph input(s) {', '.join(repr(n) for n in sources)}: give their values with "
        f"from_onnx(..., input_values={{...}}), or use graphc.SpecializingModel",
        sources,
    )


def _condition(ctx: NodeContext, t: Tensor, what: str) -> Tensor:
    if t.dtype != "bool" or t.type.numel != 1:
        raise ctx.error(f"{what} must be a single bool, got {t.type}")
    return ctx.op("reshape", t, shape=()) if t.shape != () else t


def _static_bool(t: Tensor) -> bool | None:
    value = constant_value(t)
    return None if value is None else bool(np.asarray(value).reshape(-1)[0])


# ---------------------------------------------------------------------------------------
# If
# ---------------------------------------------------------------------------------------
@converter("If")
def _if(ctx: NodeContext):
    cond = _condition(ctx, ctx.input(0), "the condition")
    taken = _static_bool(cond)
    if taken is not None:
        return ctx.subgraph("then_branch" if taken else "else_branch")
    try:
        then_out, else_out = ctx.subgraph("then_branch"), ctx.subgraph("else_branch")
    except NonConstantInputError:
        raise
    except GraphcError as e:  # a branch that only converts for some conditions: the branch must be known
        raise _needs_constant(ctx, cond, f"the condition {ctx.input_name(0)!r}", f"a branch cannot be converted for both outcomes ({e})") from e
    outputs = []
    for i, (a, b) in enumerate(zip(then_out, else_out)):
        if not _same_type(a, b):
            why = f"the branches' output {i} differ ({_describe_value(a)} vs {_describe_value(b)})"
            raise _needs_constant(ctx, cond, f"the condition {ctx.input_name(0)!r}", why)
        outputs.append(_select(ctx, cond, a, b))
    return outputs


# ---------------------------------------------------------------------------------------
# Loop
# ---------------------------------------------------------------------------------------
class _LoopState:
    """The running state of an unrolled Loop: carried values, scan outputs so far, the condition."""

    def __init__(self, ctx: NodeContext):
        self.ctx = ctx
        self.trip_count = self._trip_count()
        self.carried: list[Any] = [ctx.input(i) for i in range(2, ctx.num_inputs)]
        body = ctx.attrs.get("body")
        if body is None:
            raise ctx.error("has no body")
        self.n_scan = len(body.output) - 1 - len(self.carried)
        if self.n_scan < 0:
            raise ctx.error(f"the body returns {len(body.output)} values for {len(self.carried)} carried ones (it must return the condition, them, then scan outputs)")
        self.scans: list[list[Tensor]] = [[] for _ in range(self.n_scan)]
        # the condition: a Python bool while known at import time, else a runtime tensor (masked mode)
        self.cond: bool | Tensor = True
        if ctx.has_input(1):
            cond = _condition(ctx, ctx.input(1), "the initial condition")
            static = _static_bool(cond)
            self.cond = static if static is not None else self._go_masked(cond, f"the condition input {ctx.input_name(1)!r}")

    def _trip_count(self) -> int | None:
        ctx = self.ctx
        if not ctx.has_input(0):
            return None
        value = np.asarray(ctx.const(0, "trip count M")).reshape(-1)
        if value.size != 1:
            raise ctx.error(f"the trip count must be a single int64, got {value.size} values")
        return max(int(value[0]), 0)

    def _go_masked(self, cond: Tensor, what: str) -> Tensor:
        """Switch to running every iteration with the carried values frozen once `cond` (`what`) is false."""
        if self.trip_count is None:
            why = "the loop's condition is computed at run time and there is no trip count to unroll to"
        elif self.n_scan:
            why = "the loop's condition is computed at run time and the loop has scan outputs (their length would depend on it)"
        else:
            return cond
        raise _needs_constant(self.ctx, cond, what, why)

    @property
    def running(self) -> bool:
        return self.cond is not False

    def step(self, i: int) -> None:
        ctx = self.ctx
        cond_in = ctx.constant(True) if isinstance(self.cond, bool) else self.cond
        outs = ctx.subgraph("body", [np.array(i, np.int64), cond_in, *self.carried])
        n = len(self.carried)
        cond_out = _condition(ctx, outs[0], "the body's condition output")
        new_carried, scan_outs = outs[1 : 1 + n], outs[1 + n :]
        if isinstance(self.cond, bool):  # known: this iteration runs
            self.carried = list(new_carried)
            for collected, value in zip(self.scans, scan_outs):
                collected.append(value)
            static = _static_bool(cond_out)
            self.cond = static if static is not None else self._go_masked(cond_out, f"the body's condition output (iteration {i})")
            return
        for k, (old, new) in enumerate(zip(self.carried, new_carried)):
            if not _same_type(old, new):  # (a growing sequence, a concatenation...): the iterations must be known
                why = f"carried value {k} changes type from one iteration to the next ({_describe_value(old)} -> {_describe_value(new)})"
                raise _needs_constant(ctx, self.cond, "the loop's condition", why)
        self.carried = [_select(ctx, self.cond, new, old) for old, new in zip(self.carried, new_carried)]
        self.cond = ctx.op("logical_and", self.cond, cond_out)

    def scan_outputs(self) -> list[Tensor]:
        if self.n_scan and not self.scans[0]:
            raise self.ctx.error("the loop runs no iteration, so its scan outputs have unknown shapes")
        return [stack(self.ctx, values, 0) for values in self.scans]


@converter("Loop")
def _loop(ctx: NodeContext):
    state = _LoopState(ctx)
    i = 0
    while state.running and (state.trip_count is None or i < state.trip_count):
        if i >= MAX_UNROLL:
            raise ctx.error(f"unrolling stopped after {MAX_UNROLL} iterations (graphc unrolls loops; this one has no static end below that)")
        state.step(i)
        i += 1
    return [*state.carried, *state.scan_outputs()]


# ---------------------------------------------------------------------------------------
# Scan
# ---------------------------------------------------------------------------------------
def _axes(ctx: NodeContext, name: str, count: int, ranks: Sequence[int]) -> list[int]:
    values = [int(a) for a in (ctx.attr(name, None) or [0] * count)]
    if len(values) != count:
        raise ctx.error(f"{name} {values} should have {count} entries")
    out = []
    for a, rank in zip(values, ranks):
        if not -rank <= a < rank:
            raise ctx.error(f"{name} {values}: axis {a} is out of range for rank {rank}")
        out.append(a % rank)
    return out


def _directions(ctx: NodeContext, name: str, count: int) -> list[bool]:
    """True where the attribute says reverse (1)."""
    values = [int(d) for d in (ctx.attr(name, None) or [0] * count)]
    if len(values) != count or any(d not in (0, 1) for d in values):
        raise ctx.error(f"{name} {values} should be {count} entries of 0 (forward) or 1 (reverse)")
    return [bool(d) for d in values]


def _unroll_scan(ctx: NodeContext, states: list[Any], xs: list[Tensor], axes: list[int], reverse: list[bool]) -> tuple[list[Any], list[list[Tensor]]]:
    """Run the body over the scan inputs' slices: (final states, each scan output's per-step values in step order)."""
    lengths = {x.shape[a] for x, a in zip(xs, axes)}
    if len(lengths) != 1:
        raise ctx.error(f"the scan inputs have different sequence lengths {sorted(lengths)}")
    (length,) = lengths
    if length > MAX_UNROLL:
        raise ctx.error(f"a sequence of {length} steps is longer than graphc unrolls ({MAX_UNROLL})")
    slices = [unstack(ctx, x, a) if length else [] for x, a in zip(xs, axes)]
    outputs: list[list[Tensor]] | None = None
    for t in range(length):
        args = [s[length - 1 - t] if rev else s[t] for s, rev in zip(slices, reverse)]
        outs = ctx.subgraph("body", [*states, *args])
        states = outs[: len(states)]
        if outputs is None:
            outputs = [[] for _ in outs[len(states) :]]
        for collected, value in zip(outputs, outs[len(states) :]):
            collected.append(value)
    if outputs is None:
        body = ctx.attrs["body"]
        if len(body.output) > len(states):
            raise ctx.error("the scan has no steps, so its scan outputs have unknown shapes")
        outputs = []
    return states, outputs


@converter("Scan")
def _scan(ctx: NodeContext):
    if ctx.opset < 9:
        return _scan_batched(ctx)
    n_in = int(ctx.attr("num_scan_inputs"))
    n_states = ctx.num_inputs - n_in
    if n_states < 0:
        raise ctx.error(f"num_scan_inputs {n_in} exceeds the {ctx.num_inputs} inputs")
    states = [ctx.input(i) for i in range(n_states)]
    xs = [ctx.input(i) for i in range(n_states, ctx.num_inputs)]
    axes = _axes(ctx, "scan_input_axes", n_in, [x.ndim for x in xs])
    states, outputs = _unroll_scan(ctx, states, xs, axes, _directions(ctx, "scan_input_directions", n_in))
    k = len(outputs)
    out_axes = _axes(ctx, "scan_output_axes", k, [values[0].ndim + 1 for values in outputs])
    out_reverse = _directions(ctx, "scan_output_directions", k)
    ys = [stack(ctx, values[::-1] if rev else values, axis) for values, axis, rev in zip(outputs, out_axes, out_reverse)]
    return [*states, *ys]


def _scan_batched(ctx: NodeContext):
    """Opset 8: inputs (sequence_lens, states..., scan inputs...) carry a leading batch axis and
    the sequence axis second; the body runs per batch element."""
    n_in = int(ctx.attr("num_scan_inputs"))
    values = [ctx.input(i) for i in range(1, ctx.num_inputs)]
    n_states = len(values) - n_in
    states, xs = values[:n_states], values[n_states:]
    batch = xs[0].shape[0]
    if ctx.has_input(0):
        lens = ctx.ints(0, "sequence_lens")
        if any(n != xs[0].shape[1] for n in lens):
            raise ctx.error(f"sequence_lens {lens} shorter than the sequence length {xs[0].shape[1]} are not supported")
    reverse = _directions(ctx, "directions", n_in)
    finals, scans = [], []
    for b in range(batch):
        state_b, outputs = _unroll_scan(ctx, [take(ctx, s, 0, b) for s in states], [take(ctx, x, 0, b) for x in xs], [0] * n_in, reverse)
        finals.append(state_b)
        scans.append([stack(ctx, steps, 0) for steps in outputs])
    return [stack(ctx, list(per_batch), 0) for per_batch in zip(*finals)] + [stack(ctx, list(per_batch), 0) for per_batch in zip(*scans)]

