"""Optimizer updates as ops: sgd_update and adam_update (Adam and AdamW).

Each takes ``(param, grad, lr, step, *state)`` and returns ``(new_param, *new_state)``:
the learning rate is a 0-d input (so schedules change it without recompiling) and
``step`` the 0-d integer count of updates including this one (1 on the first),
which Adam's bias correction and SGD's first-step dampening read. The arithmetic
follows PyTorch's single-tensor ``torch.optim.SGD`` / ``Adam`` / ``AdamW`` step by
step (same operation order, scalar factors computed in float64 as Python does),
so a graphc train step tracks a PyTorch one to float32 rounding.

The gradient rules (optimizer updates are differentiable, e.g. for meta-learning)
are the chain rule through those formulas.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from ..ir import TensorType, check_infer
from ._grad import scalar, zeros_like
from ._lazy import ops as O
from ._lazy import te, tir
from .registry import ELEMWISE, Sample, defop, rand
from .te_util import te_shape


def _check_common(param: TensorType, grad: TensorType, lr: TensorType, step: TensorType, state, n_state: int, what: str):
    check_infer(dtypes.is_float(param.dtype), f"param must be a float tensor, got {param.dtype}")
    check_infer(grad == param, f"grad {grad} must match param {param}")
    check_infer(lr.dtype == param.dtype and lr.shape == (), f"lr must be a 0-d {param.dtype} tensor, got {lr}")
    check_infer(step.dtype in ("i32", "i64") and step.shape == (), f"step must be a 0-d integer tensor, got {step}")
    check_infer(len(state) == n_state, f"{what} takes {n_state} state tensor(s) after (param, grad, lr, step), got {len(state)}")
    for s in state:
        check_infer(s == param, f"optimizer state {s} must match param {param}")
    return (param,) * (1 + n_state)


def _number(name: str, v, low: float = 0.0, high: float = math.inf) -> None:
    check_infer(isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high, f"{name} must be a number in [{low}, {high}], got {v!r}")


def _cotangents(g, out) -> list:
    """The output cotangents as a list, zeros where an output has none."""
    gs = list(g) if isinstance(g, (tuple, list)) else [g]
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [gi if gi is not None else zeros_like(o) for gi, o in zip(gs, outs)]


def _f64(e):
    return tir.Cast("float64", e)


# ---------------------------------------------------------------------------------------
# sgd_update: torch.optim.SGD (momentum, dampening, Nesterov, weight decay)
# ---------------------------------------------------------------------------------------


def _sgd_infer(param, grad, lr, step, *state, momentum, dampening, nesterov, weight_decay):
    _number("momentum", momentum)
    _number("dampening", dampening, 0.0, 1.0)
    _number("weight_decay", weight_decay)
    check_infer(isinstance(nesterov, bool), f"nesterov must be a bool, got {nesterov!r}")
    check_infer(not nesterov or (momentum > 0 and dampening == 0), "Nesterov momentum needs momentum > 0 and dampening 0")
    return _check_common(param, grad, lr, step, state, 1 if momentum else 0, "sgd_update with momentum" if momentum else "sgd_update without momentum")


def _sgd_ref(param, grad, lr, step, *state, momentum, dampening, nesterov, weight_decay):
    dt = param.dtype
    d = grad + dt.type(weight_decay) * param if weight_decay else grad
    if not momentum:
        return param + (-lr) * d
    buf = d if (dampening and step <= 1) else state[0] * dt.type(momentum) + dt.type(1.0 - dampening) * d
    update = d + dt.type(momentum) * buf if nesterov else buf
    return (param + (-lr) * update).astype(dt), buf.astype(dt)


def _sgd_lower(param, grad, lr, step, *state, momentum, dampening, nesterov, weight_decay):
    shape, dt = te_shape(param), str(param.dtype)

    def c(v):
        return tir.const(v, dt)

    def d(i):  # the gradient with L2 weight decay
        return grad[i] + c(weight_decay) * param[i] if weight_decay else grad[i]

    if not momentum:
        return te.compute(shape, lambda *i: param[i] + (-lr[()]) * d(i), name="sgd_param")
    buf = state[0]

    def new_buf(i):
        acc = buf[i] * c(momentum) + c(1.0 - dampening) * d(i)
        return tir.Select(step[()] <= tir.const(1, str(step.dtype)), d(i), acc) if dampening else acc

    def update(i):
        return d(i) + c(momentum) * new_buf(i) if nesterov else new_buf(i)

    return (
        te.compute(shape, lambda *i: param[i] + (-lr[()]) * update(i), name="sgd_param"),
        te.compute(shape, lambda *i: new_buf(i), name="sgd_momentum"),
    )


def _sgd_grad(g, param, grad, lr, step, *state, out, momentum, dampening, nesterov, weight_decay):
    gs = _cotangents(g, out)
    d = grad + param * weight_decay if weight_decay else grad
    if not momentum:
        g_d = O.neg(lr) * gs[0]
        return (gs[0] + g_d * weight_decay if weight_decay else gs[0], g_d, O.sum(O.neg(d) * gs[0]), None)
    gp, gb = gs
    buf = state[0]
    keep, carry = scalar(1.0 - dampening, d.dtype), scalar(momentum, d.dtype)  # d new_buf / d d, d new_buf / d buf
    new_buf = buf * momentum + d * (1.0 - dampening)
    if dampening:  # the first step copies d into the buffer
        first = O.less_equal(step, scalar(1, step.dtype))
        keep = O.where(first, scalar(1.0, d.dtype), keep)
        carry = O.where(first, scalar(0.0, d.dtype), carry)
        new_buf = O.where(first, d, new_buf)
    update = d + new_buf * momentum if nesterov else new_buf
    g_update = O.neg(lr) * gp
    g_buf = gb + (g_update * momentum if nesterov else g_update)
    g_d = g_buf * keep + g_update if nesterov else g_buf * keep
    g_param = gp + g_d * weight_decay if weight_decay else gp
    return (g_param, g_d, O.sum(O.neg(update) * gp), None, g_buf * carry)


def _optim_samples(rng, cases, n_state: int, positive_state: bool = False):
    out = []
    for shape, step, attrs, note in cases:
        state = [rand(rng, *shape, low=0.1 if positive_state and k == 1 else -1.0, high=1.0) for k in range(n_state(attrs))]
        lr = np.asarray(rng.uniform(0.01, 0.1), np.float32)
        out.append(Sample((rand(rng, *shape), rand(rng, *shape), lr, np.asarray(step, np.int64), *state), attrs, note))
    return out


_SGD_CASES = [  # (shape, step, attrs, note)
    ((4, 5), 1, {}, "plain"),
    ((17,), 3, {"weight_decay": 0.01}, "weight decay"),
    ((3, 4, 5), 2, {"momentum": 0.9}, "momentum"),
    ((6, 7), 4, {"momentum": 0.9, "nesterov": True, "weight_decay": 0.05}, "Nesterov, weight decay"),
    ((5,), 1, {"momentum": 0.8, "dampening": 0.3}, "dampening, first step"),
    ((5, 3), 6, {"momentum": 0.8, "dampening": 0.3, "weight_decay": 0.1}, "dampening, later step"),
    ((), 2, {"momentum": 0.5}, "0-d parameter"),
]

sgd_update = defop(
    "sgd_update",
    infer=_sgd_infer,
    ref=_sgd_ref,
    lower=_sgd_lower,
    grad=_sgd_grad,
    fusion=ELEMWISE,
    attrs={"momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0},
    samples=lambda rng: _optim_samples(rng, _SGD_CASES, lambda a: 1 if a.get("momentum") else 0),
    doc="One torch.optim.SGD step: (param, grad, lr, step[, momentum_buffer]) -> (param[, momentum_buffer]).",
)

# ---------------------------------------------------------------------------------------
# adam_update: torch.optim.Adam (L2 weight decay) and AdamW (decoupled weight decay)
# ---------------------------------------------------------------------------------------


def _adam_infer(param, grad, lr, step, *state, beta1, beta2, eps, weight_decay, decoupled):
    _number("beta1", beta1, 0.0, 1.0)
    _number("beta2", beta2, 0.0, 1.0)
    check_infer(beta1 < 1 and beta2 < 1, f"betas must be < 1, got ({beta1}, {beta2})")
    _number("eps", eps)
    _number("weight_decay", weight_decay)
    check_infer(isinstance(decoupled, bool), f"decoupled must be a bool, got {decoupled!r}")
    return _check_common(param, grad, lr, step, state, 2, "adam_update (exp_avg, exp_avg_sq)")


def _adam_ref(param, grad, lr, step, m, v, beta1, beta2, eps, weight_decay, decoupled):
    dt = param.dtype.type
    lr64, step64 = float(lr), float(step)
    g = grad + dt(weight_decay) * param if weight_decay and not decoupled else grad
    if decoupled and weight_decay:
        param = param * dt(1.0 - lr64 * weight_decay)
    m1 = m + dt(1.0 - beta1) * (g - m)
    v1 = v * dt(beta2) + dt(1.0 - beta2) * g * g
    step_size = lr64 / (1.0 - beta1**step64)
    denom = np.sqrt(v1) / dt(math.sqrt(1.0 - beta2**step64)) + dt(eps)
    return (param + dt(-step_size) * (m1 / denom)).astype(param.dtype), m1.astype(param.dtype), v1.astype(param.dtype)


def _adam_lower(param, grad, lr, step, m, v, beta1, beta2, eps, weight_decay, decoupled):
    shape, dt = te_shape(param), str(param.dtype)

    def c(x):
        return tir.const(x, dt)

    def g(i):
        return grad[i] + c(weight_decay) * param[i] if weight_decay and not decoupled else grad[i]

    def m1(i):  # torch's lerp(m, g, 1 - beta1) for a weight below 0.5
        return m[i] + c(1.0 - beta1) * (g(i) - m[i])

    def v1(i):  # addcmul: v * beta2 + (1 - beta2) * g * g
        return v[i] * c(beta2) + c(1.0 - beta2) * g(i) * g(i)

    # the step's scalar factors, computed in float64 as PyTorch computes them in Python
    one = tir.const(1.0, "float64")
    step64 = _f64(step[()])
    step_size = tir.Cast(dt, _f64(lr[()]) / (one - tir.power(tir.const(beta1, "float64"), step64)))
    bc2_sqrt = tir.Cast(dt, tir.sqrt(one - tir.power(tir.const(beta2, "float64"), step64)))
    shrink = tir.Cast(dt, one - _f64(lr[()]) * tir.const(weight_decay, "float64"))

    def new_param(*i):
        p = param[i] * shrink if decoupled and weight_decay else param[i]
        denom = tir.sqrt(v1(i)) / bc2_sqrt + c(eps)
        return p + (-step_size) * (m1(i) / denom)

    return (
        te.compute(shape, new_param, name="adam_param"),
        te.compute(shape, lambda *i: m1(i), name="adam_exp_avg"),
        te.compute(shape, lambda *i: v1(i), name="adam_exp_avg_sq"),
    )


def _adam_grad(g, param, grad, lr, step, m, v, *, out, beta1, beta2, eps, weight_decay, decoupled):
    gp, gm, gv = _cotangents(g, out)
    dt = param.dtype
    coupled = bool(weight_decay) and not decoupled
    g2 = grad + param * weight_decay if coupled else grad
    m1 = m + (g2 - m) * (1.0 - beta1)
    v1 = v * beta2 + g2 * g2 * (1.0 - beta2)
    stepf = O.cast(step, dtype=dt)
    bc1 = 1.0 - O.pow(scalar(beta1, dt), stepf)
    bc2_sqrt = O.sqrt(1.0 - O.pow(scalar(beta2, dt), stepf))
    sv = O.sqrt(v1)
    denom = sv / bc2_sqrt + eps
    step_size = lr / bc1
    q = m1 / denom
    g_m1 = gm + gp * O.neg(step_size) / denom
    g_v1 = gv + gp * step_size * q / denom * (0.5 / (bc2_sqrt * sv))
    g_g2 = g_m1 * (1.0 - beta1) + g_v1 * g2 * (2.0 * (1.0 - beta2))
    if decoupled and weight_decay:
        g_param = gp * (1.0 - lr * weight_decay)
        g_lr = O.sum(gp * O.neg(q / bc1 + param * weight_decay))
    else:
        g_param = gp + g_g2 * weight_decay if coupled else gp
        g_lr = O.sum(gp * O.neg(q / bc1))
    return (g_param, g_g2, g_lr, None, g_m1 * beta1, g_v1 * beta2)


_ADAM_CASES = [  # (shape, step, attrs, note)
    ((4, 6), 1, {}, "first step"),
    ((3, 17), 7, {"weight_decay": 0.01}, "L2 weight decay (Adam)"),
    ((2, 3, 5), 3, {"weight_decay": 0.1, "decoupled": True}, "decoupled weight decay (AdamW)"),
    ((9,), 25, {"beta1": 0.8, "beta2": 0.99, "eps": 1e-6}, "other betas"),
]


def _adam_samples(rng):
    samples = _optim_samples(rng, _ADAM_CASES, lambda a: 2, positive_state=True)
    zero_state = Sample((rand(rng, 3, 4), rand(rng, 3, 4), np.asarray(1e-3, np.float32), np.asarray(1, np.int64), np.zeros((3, 4), np.float32), np.zeros((3, 4), np.float32)),
                        {"weight_decay": 0.01, "decoupled": True}, "fresh state (AdamW's first step)", no_grad_check=(5,))
    return samples + [zero_state]  # (v = 0 sits on sqrt's kink: no finite differences there)


adam_update = defop(
    "adam_update",
    infer=_adam_infer,
    ref=_adam_ref,
    lower=_adam_lower,
    grad=_adam_grad,
    fusion=ELEMWISE,
    attrs={"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "decoupled": False},
    samples=_adam_samples,
    doc="One torch.optim.Adam step (AdamW with decoupled=True): (param, grad, lr, step, exp_avg, exp_avg_sq) -> the three updated.",
)
