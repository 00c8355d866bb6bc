"""Recurrent ONNX ops (RNN, GRU, LSTM), unrolled over the static sequence length.

Each direction becomes a chain of per-step cells built from graphc ops: the input
projection of every step is one `linear` over the whole sequence (biases folded in),
each step adds the recurrent `linear` of the previous hidden state, splits the gates
and applies the activations. ``sequence_lens`` (constant or not) masks the steps past
each batch element's length: the state is carried unchanged and Y is zero there, so
a reverse pass over the padded sequence starts at each element's own last step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ... import dtypes
from ...tensor import Tensor
from ..onnx import NodeContext, converter
from ._compose import call_converter, split_even, stack, take, unstack

# ONNX activation name (lower case) -> (ONNX op converting it or None, uses alpha, uses beta, default alpha, default beta)
_ACTIVATIONS = {
    "relu": ("Relu", False, False, None, None),
    "tanh": ("Tanh", False, False, None, None),
    "sigmoid": ("Sigmoid", False, False, None, None),
    "softsign": ("Softsign", False, False, None, None),
    "softplus": ("Softplus", False, False, None, None),
    "leakyrelu": ("LeakyRelu", True, False, 0.01, None),
    "thresholdedrelu": ("ThresholdedRelu", True, False, 1.0, None),
    "elu": ("Elu", True, False, 1.0, None),
    "hardsigmoid": ("HardSigmoid", True, True, 0.2, 0.5),
    "affine": (None, True, True, 1.0, 0.0),  # alpha * x + beta (no ONNX op of its own)
    "scaledtanh": (None, True, True, 1.0, 1.0),  # alpha * tanh(beta * x)
}
_DEFAULT_ACTIVATIONS = {"RNN": ("Tanh",), "GRU": ("Sigmoid", "Tanh"), "LSTM": ("Sigmoid", "Tanh", "Tanh")}
_NUM_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


@dataclass
class _Activation:
    name: str
    alpha: float | None
    beta: float | None

    def __call__(self, ctx: NodeContext, x: Tensor) -> Tensor:
        op_type = _ACTIVATIONS[self.name.lower()][0]
        if op_type is not None:
            attrs = {k: v for k, v in (("alpha", self.alpha), ("beta", self.beta)) if v is not None}
            return call_converter(ctx, op_type, [x], **attrs)
        if self.name.lower() == "affine":
            return ctx.op("add", ctx.op("mul", x, ctx.scalar(self.alpha, x)), ctx.scalar(self.beta, x))
        return ctx.op("mul", ctx.op("tanh", ctx.op("mul", x, ctx.scalar(self.beta, x))), ctx.scalar(self.alpha, x))


def _activations(ctx: NodeContext, num_dirs: int) -> list[list[_Activation]]:
    """The activation functions of each direction; alpha/beta values are consumed in order by
    the functions that take them, the others use the ONNX operators' defaults."""
    per_dir = len(_DEFAULT_ACTIVATIONS[ctx.op_type])
    names = ctx.attr("activations", None) or list(_DEFAULT_ACTIVATIONS[ctx.op_type]) * num_dirs
    if len(names) != per_dir * num_dirs:
        raise ctx.error(f"activations {names} should name {per_dir} function(s) per direction ({num_dirs} direction(s))")
    alphas = list(ctx.attr("activation_alpha", None) or [])
    betas = list(ctx.attr("activation_beta", None) or [])
    funcs = []
    for name in names:
        if name.lower() not in _ACTIVATIONS:
            raise ctx.error(f"unknown activation {name!r} (supported: {', '.join(sorted(_ACTIVATIONS))})")
        _, uses_alpha, uses_beta, alpha, beta = _ACTIVATIONS[name.lower()]
        if uses_alpha and alphas:
            alpha = alphas.pop(0)
        if uses_beta and betas:
            beta = betas.pop(0)
        funcs.append(_Activation(name, alpha, beta))
    return [funcs[d * per_dir : (d + 1) * per_dir] for d in range(num_dirs)]


class _Recurrence:
    """Shapes, attributes and optional inputs of one RNN/GRU/LSTM node, checked."""

    def __init__(self, ctx: NodeContext):
        self.ctx = ctx
        self.gates = _NUM_GATES[ctx.op_type]
        self.layout = int(ctx.attr("layout", 0) or 0)
        x, w, r = ctx.input(0), ctx.input(1), ctx.input(2)
        if x.ndim != 3 or w.ndim != 3 or r.ndim != 3:
            raise ctx.error(f"X, W and R must be 3-D, got {list(x.shape)}, {list(w.shape)} and {list(r.shape)}")
        if not dtypes.is_float(x.dtype):
            raise ctx.error(f"X must be a float tensor, got {x.dtype}")
        self.x = ctx.op("transpose", x, perm=(1, 0, 2)) if self.layout else x  # [seq, batch, input]
        self.seq, self.batch, self.input_size = self.x.shape
        direction = ctx.attr("direction", "forward") or "forward"
        if direction not in ("forward", "reverse", "bidirectional"):
            raise ctx.error(f"unknown direction {direction!r} (forward, reverse or bidirectional)")
        self.reverse = [False, True] if direction == "bidirectional" else [direction == "reverse"]
        self.dirs = len(self.reverse)
        self.hidden = r.shape[-1]
        declared = ctx.attr("hidden_size", None)
        if declared is not None and int(declared) != self.hidden:
            raise ctx.error(f"hidden_size {declared} does not match R {list(r.shape)}")
        gh = self.gates * self.hidden
        if w.shape != (self.dirs, gh, self.input_size) or r.shape != (self.dirs, gh, self.hidden):
            raise ctx.error(
                f"W {list(w.shape)} / R {list(r.shape)} should be [{self.dirs}, {gh}, {self.input_size}] / "
                f"[{self.dirs}, {gh}, {self.hidden}] for direction {direction!r}, hidden size {self.hidden} and X {list(x.shape)}"
            )
        self.w, self.r = w, r
        self.b = self.optional(3, (self.dirs, 2 * gh), "B")
        self.h0 = self.state_input(5, "initial_h")
        clip = ctx.attr("clip", None)
        self.clip = None if clip is None else float(clip)
        self.acts = _activations(ctx, self.dirs)
        self.lens = self._sequence_lens()

    def optional(self, i: int, shape: tuple, what: str) -> Tensor | None:
        if not self.ctx.has_input(i):
            return None
        t = self.ctx.input(i)
        if t.shape != shape:
            raise self.ctx.error(f"{what} is {list(t.shape)}, expected {list(shape)}")
        return t

    def state_input(self, i: int, what: str) -> Tensor | None:
        """An initial state input, as [dirs, batch, hidden] whatever the layout."""
        shape = (self.batch, self.dirs, self.hidden) if self.layout else (self.dirs, self.batch, self.hidden)
        t = self.optional(i, shape, what)
        return _swap01(self.ctx, t) if t is not None and self.layout else t

    def _sequence_lens(self) -> Tensor | None:
        """sequence_lens as [batch, 1] for masking, None when absent or all full-length."""
        ctx = self.ctx
        if not ctx.has_input(4):
            return None
        lens = self.optional(4, (self.batch,), "sequence_lens")
        if lens.dtype not in ("i32", "i64"):
            raise ctx.error(f"sequence_lens must be int32, got {lens.dtype}")
        if ctx.is_const(4):
            values = ctx.const(4, "sequence_lens")
            if np.any((values < 0) | (values > self.seq)):
                raise ctx.error(f"sequence_lens {values.tolist()} must lie in [0, {self.seq}]")
            if np.all(values == self.seq):
                return None
        return ctx.op("reshape", lens, shape=(self.batch, 1))

    # -- per direction -------------------------------------------------------------------
    def weights(self, d: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """W, R [gates*hidden, *] and the biases Wb, Rb [gates*hidden] of direction d."""
        ctx = self.ctx
        wb = rb = None
        if self.b is not None:
            wb, rb = split_even(ctx, take(ctx, self.b, 0, d), 0, 2)
        return take(ctx, self.w, 0, d), take(ctx, self.r, 0, d), wb, rb

    def initial(self, state: Tensor | None, d: int) -> Tensor:
        if state is not None:
            return take(self.ctx, state, 0, d)
        zeros = np.zeros((self.batch, self.hidden), dtype=dtypes.to_numpy(self.x.dtype))
        return self.ctx.constant(zeros)

    def projections(self, w: Tensor, bias: Tensor | None) -> list[Tensor]:
        """X @ W^T + bias for every step at once, then one [batch, gates*hidden] tensor per step."""
        proj = self.ctx.op("linear", self.x, w)
        if bias is not None:
            proj = self.ctx.op("add", proj, bias)
        return unstack(self.ctx, proj, 0)

    def clipped(self, x: Tensor) -> Tensor:
        if self.clip is None:
            return x
        ctx = self.ctx
        return ctx.op("minimum", ctx.op("maximum", x, ctx.scalar(-self.clip, x)), ctx.scalar(self.clip, x))

    def unroll(self, d: int, step: Callable[[Tensor, tuple], tuple], proj: list[Tensor], state: tuple) -> tuple[list[Tensor], tuple]:
        """Run `step(projection_t, state) -> new state` (hidden state first) over the steps of direction d.

        Returns the per-step outputs (in time order) and the final state."""
        ctx = self.ctx
        ys: list[Tensor | None] = [None] * self.seq
        order = range(self.seq - 1, -1, -1) if self.reverse[d] else range(self.seq)
        for t in order:
            new = step(proj[t], state)
            if self.lens is None:
                ys[t] = new[0]
            else:
                live = ctx.op("less", ctx.scalar(t, self.lens), self.lens)  # [batch, 1]
                ys[t] = ctx.op("where", live, new[0], ctx.scalar(0, new[0]))
                new = tuple(ctx.op("where", live, n, s) for n, s in zip(new, state))
            state = new
        return ys, state

    def outputs(self, per_dir: list[tuple[list[Tensor], tuple]]) -> list[Tensor]:
        """Y [seq, dirs, batch, hidden] and the final states [dirs, batch, hidden] (in the node's layout)."""
        ctx = self.ctx
        y = stack(ctx, [stack(ctx, ys, 0) for ys, _ in per_dir], 1)
        finals = [stack(ctx, [state[k] for _, state in per_dir], 0) for k in range(len(per_dir[0][1]))]
        if self.layout:
            y = ctx.op("transpose", y, perm=(2, 0, 1, 3))
            finals = [_swap01(ctx, s) for s in finals]
        return [y, *finals]


def _swap01(ctx: NodeContext, t: Tensor) -> Tensor:
    """Swap the first two axes of a 3-D tensor (batch-major <-> direction-major states)."""
    return ctx.op("transpose", t, perm=(1, 0, 2))


def _add(ctx: NodeContext, a: Tensor, b: Tensor | None) -> Tensor:
    return a if b is None else ctx.op("add", a, b)


@converter("RNN")
def _rnn(ctx: NodeContext):
    """Ht = f(Xt Wi^T + Ht-1 Ri^T + Wbi + Rbi)."""
    rec = _Recurrence(ctx)
    per_dir = []
    for d in range(rec.dirs):
        w, r, wb, rb = rec.weights(d)
        (f,) = rec.acts[d]
        proj = rec.projections(w, None if wb is None else ctx.op("add", wb, rb))

        def step(xw, state, r=r, f=f):
            return (f(ctx, rec.clipped(ctx.op("add", xw, ctx.op("linear", state[0], r)))),)

        per_dir.append(rec.unroll(d, step, proj, (rec.initial(rec.h0, d),)))
    return rec.outputs(per_dir)


@converter("GRU")
def _gru(ctx: NodeContext):
    """z, r, h gates; linear_before_reset applies the reset gate after the recurrent product (cuDNN style)."""
    rec = _Recurrence(ctx)
    before_reset = bool(ctx.attr("linear_before_reset", 0))
    hid = rec.hidden
    per_dir = []
    for d in range(rec.dirs):
        w, r, wb, rb = rec.weights(d)
        f, g = rec.acts[d]
        r_zr, r_h = ctx.op("split", r, axis=0, sections=(2 * hid, hid))
        rb_h = None
        bias = wb
        if rb is not None:
            rb_zr, rb_h = ctx.op("split", rb, axis=0, sections=(2 * hid, hid))
            # Rbz and Rbr join the input bias; Rbh too unless it sits inside the reset product
            zeros = ctx.constant(np.zeros(hid, dtype=dtypes.to_numpy(rb.dtype)))
            bias = ctx.op("add", wb, ctx.op("concat", rb_zr, zeros if before_reset else rb_h, axis=0))
        proj = rec.projections(w, bias)

        def step(xw, state, r_zr=r_zr, r_h=r_h, rb_h=rb_h, f=f, g=g):
            h = state[0]
            x_z, x_r, x_h = split_even(ctx, xw, 1, 3)
            h_z, h_r = split_even(ctx, ctx.op("linear", h, r_zr), 1, 2)
            z = f(ctx, rec.clipped(ctx.op("add", x_z, h_z)))
            reset = f(ctx, rec.clipped(ctx.op("add", x_r, h_r)))
            if before_reset:
                recur = ctx.op("mul", reset, _add(ctx, ctx.op("linear", h, r_h), rb_h))
            else:
                recur = ctx.op("linear", ctx.op("mul", reset, h), r_h)
            cand = g(ctx, rec.clipped(ctx.op("add", x_h, recur)))
            one_minus_z = ctx.op("sub", ctx.scalar(1, z), z)
            return (ctx.op("add", ctx.op("mul", one_minus_z, cand), ctx.op("mul", z, h)),)

        per_dir.append(rec.unroll(d, step, proj, (rec.initial(rec.h0, d),)))
    return rec.outputs(per_dir)


@converter("LSTM")
def _lstm(ctx: NodeContext):
    """i, o, f, c gates with optional peepholes P[i, o, f]; input_forget couples f = 1 - i."""
    rec = _Recurrence(ctx)
    c0 = rec.state_input(6, "initial_c")
    peep = rec.optional(7, (rec.dirs, 3 * rec.hidden), "P")
    input_forget = bool(ctx.attr("input_forget", 0))
    per_dir = []
    for d in range(rec.dirs):
        w, r, wb, rb = rec.weights(d)
        f, g, h_act = rec.acts[d]
        proj = rec.projections(w, None if wb is None else ctx.op("add", wb, rb))
        p_i = p_o = p_f = None
        if peep is not None:
            p_i, p_o, p_f = split_even(ctx, take(ctx, peep, 0, d), 0, 3)

        def peephole(p, c):
            return None if p is None else ctx.op("mul", p, c)

        def step(xw, state, r=r, f=f, g=g, h_act=h_act, p_i=p_i, p_o=p_o, p_f=p_f):
            h, c = state
            x_i, x_o, x_f, x_c = split_even(ctx, ctx.op("add", xw, ctx.op("linear", h, r)), 1, 4)
            i = f(ctx, rec.clipped(_add(ctx, x_i, peephole(p_i, c))))
            if input_forget:
                forget = ctx.op("sub", ctx.scalar(1, i), i)
            else:
                forget = f(ctx, rec.clipped(_add(ctx, x_f, peephole(p_f, c))))
            cand = g(ctx, rec.clipped(x_c))
            c_new = ctx.op("add", ctx.op("mul", forget, c), ctx.op("mul", i, cand))
            o = f(ctx, rec.clipped(_add(ctx, x_o, peephole(p_o, c_new))))
            return ctx.op("mul", o, h_act(ctx, c_new)), c_new

        state = (rec.initial(rec.h0, d), rec.initial(c0, d))
        per_dir.append(rec.unroll(d, step, proj, state))
    return rec.outputs(per_dir)
