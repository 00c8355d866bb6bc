"""ai.onnx.preview.training optimizers (Momentum, Adagrad, Adam), as graphc elementwise ops.

Each node updates n tensors at once: inputs R (learning rate), T (update count), then
the n tensors X, their gradients G and their optimizer states (V and/or H); outputs the
new X's then the new states, in the same grouping. R and T are usually graph inputs,
so T-dependent rules (first-step momentum, Adam's bias correction) select with `where`.
"""
from __future__ import annotations

from ...tensor import Tensor
from ..onnx import NodeContext, converter

DOMAIN = "ai.onnx.preview.training"


class _Optimizer:
    """The groups of a training op's inputs, and scalar helpers in the tensors' dtype."""

    def __init__(self, ctx: NodeContext, n_states: int):
        self.ctx = ctx
        groups = 2 + n_states  # X, G, then the states
        n, rem = divmod(ctx.num_inputs - 2, groups)
        if rem or n < 1:
            raise ctx.error(f"expects R, T and {groups} groups of equally many tensors, got {ctx.num_inputs} inputs")
        self.n = n
        self.groups = [[ctx.input(2 + k * n + i) for i in range(n)] for k in range(groups)]
        x0 = self.groups[0][0]
        self.dtype = x0.dtype
        self.rate = self._as_float(ctx.input(0))
        self.step = self._as_float(ctx.input(1))  # the update count, as a float
        self.first = ctx.op("less_equal", self.step, self.const(0))  # T <= 0: no history yet (the first update)

    def _as_float(self, t: Tensor) -> Tensor:
        if t.type.numel != 1:
            raise self.ctx.error(f"R and T must be scalars, got a {list(t.shape)} tensor")
        t = self.ctx.op("reshape", t, shape=())
        return t if t.dtype == self.dtype else self.ctx.op("cast", t, dtype=self.dtype)

    def const(self, value: float) -> Tensor:
        return self.ctx.constant(value, dtype=self.dtype)

    def regularized(self, x: Tensor, g: Tensor, coefficient: float) -> Tensor:
        """g + norm_coefficient * x (the gradient of the L2 penalty added)."""
        return g if coefficient == 0 else self.add(g, self.mul(x, self.const(coefficient)))

    def mul(self, a, b):
        return self.ctx.op("mul", a, b)

    def add(self, a, b):
        return self.ctx.op("add", a, b)

    def sub(self, a, b):
        return self.ctx.op("sub", a, b)

    def div(self, a, b):
        return self.ctx.op("div", a, b)


@converter("Momentum", domain=DOMAIN)
def _momentum(ctx: NodeContext):
    """v' = alpha v + beta' g (beta' = 1 on the first update); x' = x - r v' (standard) or x - r (g + alpha v') (nesterov)."""
    opt = _Optimizer(ctx, 1)
    alpha, beta = float(ctx.attr("alpha")), float(ctx.attr("beta"))
    mode = ctx.attr("mode")
    if mode not in ("standard", "nesterov"):
        raise ctx.error(f"unknown mode {mode!r} (standard or nesterov)")
    beta_t = ctx.op("where", opt.first, opt.const(1.0), opt.const(beta))
    xs, vs = [], []
    for x, g, v in zip(*opt.groups):
        g = opt.regularized(x, g, float(ctx.attr("norm_coefficient")))
        v_new = opt.add(opt.mul(v, opt.const(alpha)), opt.mul(g, beta_t))
        step = v_new if mode == "standard" else opt.add(g, opt.mul(v_new, opt.const(alpha)))
        xs.append(opt.sub(x, opt.mul(opt.rate, step)))
        vs.append(v_new)
    return xs + vs


@converter("Adagrad", domain=DOMAIN)
def _adagrad(ctx: NodeContext):
    """r' = r / (1 + T decay); h' = h + g^2; x' = x - r' g / (sqrt(h') + epsilon)."""
    opt = _Optimizer(ctx, 1)
    decay, eps = float(ctx.attr("decay_factor")), float(ctx.attr("epsilon"))
    rate = opt.div(opt.rate, opt.add(opt.const(1.0), opt.mul(opt.step, opt.const(decay))))
    xs, hs = [], []
    for x, g, h in zip(*opt.groups):
        g = opt.regularized(x, g, float(ctx.attr("norm_coefficient")))
        h_new = opt.add(h, opt.mul(g, g))
        scale = opt.add(ctx.op("sqrt", h_new), opt.const(eps))
        xs.append(opt.sub(x, opt.div(opt.mul(rate, g), scale)))
        hs.append(h_new)
    return xs + hs


@converter("Adam", domain=DOMAIN)
def _adam(ctx: NodeContext):
    """v' = alpha v + (1 - alpha) g; h' = beta h + (1 - beta) g^2; bias-corrected rate
    r sqrt(1 - beta^T) / (1 - alpha^T) from the first update on; x' = (1 - post) (x - r' v' / (sqrt(h') + epsilon))."""
    opt = _Optimizer(ctx, 2)
    alpha, beta, eps = float(ctx.attr("alpha")), float(ctx.attr("beta")), float(ctx.attr("epsilon"))
    post = float(ctx.attr("norm_coefficient_post"))
    corrected = opt.div(
        opt.mul(opt.rate, ctx.op("sqrt", opt.sub(opt.const(1.0), ctx.op("pow", opt.const(beta), opt.step)))),
        opt.sub(opt.const(1.0), ctx.op("pow", opt.const(alpha), opt.step)),
    )
    rate = ctx.op("where", opt.first, opt.rate, corrected)
    xs, vs, hs = [], [], []
    for x, g, v, h in zip(*opt.groups):
        g = opt.regularized(x, g, float(ctx.attr("norm_coefficient")))
        v_new = opt.add(opt.mul(v, opt.const(alpha)), opt.mul(g, opt.const(1.0 - alpha)))
        h_new = opt.add(opt.mul(h, opt.const(beta)), opt.mul(opt.mul(g, g), opt.const(1.0 - beta)))
        x_new = opt.sub(x, opt.div(opt.mul(rate, v_new), opt.add(ctx.op("sqrt", h_new), opt.const(eps))))
        xs.append(x_new if post == 0 else opt.mul(x_new, opt.const(1.0 - post)))
        vs.append(v_new)
        hs.append(h_new)
    return xs + vs + hs
