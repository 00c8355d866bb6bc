"""Inference batch normalization: a per-channel affine map with broadcast parameters."""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ir import TensorType, check_infer
from ._lazy import ops as O
from ._lazy import te, tir
from .registry import ELEMWISE, Sample, defop, rand
from .te_util import te_shape

# ---------------------------------------------------------------------------------------
# batch_norm (inference): per-channel affine with broadcast parameters
# ---------------------------------------------------------------------------------------


def _batch_norm_infer(x: TensorType, scale: TensorType, bias: TensorType, mean: TensorType, var: TensorType, eps):
    check_infer(x.rank >= 2, f"input must have rank >= 2 (channels on axis 1), got {list(x.shape)}")
    check_infer(dtypes.is_float(x.dtype), f"needs a float tensor, got {x.dtype}")
    check_infer(isinstance(eps, (int, float)) and eps >= 0, f"eps must be a number >= 0, got {eps!r}")
    for name, p in (("scale", scale), ("bias", bias), ("mean", mean), ("var", var)):
        check_infer(p.dtype == x.dtype and p.shape == (x.shape[1],), f"{name} must be {x.dtype}[{x.shape[1]}] (one per channel), got {p}")
    return x


def _param_shape(x) -> tuple[int, ...]:
    """Per-channel parameters reshaped to broadcast against x (channels on axis 1)."""
    return (x.shape[1],) + (1,) * (len(x.shape) - 2)


def _batch_norm_ref(x, scale, bias, mean, var, eps):
    col = lambda p: p.astype(np.float64).reshape(_param_shape(x))  # noqa: E731
    y = (x.astype(np.float64) - col(mean)) / np.sqrt(col(var) + eps) * col(scale) + col(bias)
    return y.astype(x.dtype)


def _batch_norm_lower(x, scale, bias, mean, var, eps):
    eps_c = tir.const(eps, str(x.dtype))

    def element(*i):
        c = i[1]
        return (x[i] - mean[c]) * (scale[c] / tir.sqrt(var[c] + eps_c)) + bias[c]

    return te.compute(te_shape(x), element, name="batch_norm")


def _per_channel_sum(t):
    return O.sum(t, axes=tuple(a for a in range(t.ndim) if a != 1))


def _batch_norm_grad(g, x, scale, bias, mean, var, out, eps):
    pshape = _param_shape(x)
    col = (lambda p: p) if len(pshape) == 1 else (lambda p: O.reshape(p, shape=pshape))
    per_channel = _per_channel_sum
    rstd = O.rsqrt(var + eps)  # [C]
    xc = x - col(mean)
    dx = g * col(scale * rstd)
    g_xc = per_channel(g * xc)
    return (
        dx,
        g_xc * rstd,  # dscale
        per_channel(g),  # dbias
        O.neg(per_channel(dx)),  # dmean
        g_xc * scale * rstd * rstd * rstd * -0.5,  # dvar: d/dvar (var + eps)^-1/2 = -1/2 (var + eps)^-3/2
    )


def _batch_norm_samples(rng):
    def params(c):
        return (rand(rng, c, low=0.5, high=2.0), rand(rng, c), rand(rng, c), rand(rng, c, low=0.2, high=2.0))

    return [
        Sample((rand(rng, 2, 3, 4, 5), *params(3))),
        Sample((rand(rng, 4, 6), *params(6)), {"eps": 1e-3}, note="rank 2"),
        Sample((rand(rng, 2, 5, 7), *params(5)), note="rank 3"),
    ]


batch_norm = defop(
    "batch_norm",
    infer=_batch_norm_infer,
    ref=_batch_norm_ref,
    lower=_batch_norm_lower,
    grad=_batch_norm_grad,
    fusion=ELEMWISE,
    attrs={"eps": 1e-5},
    samples=_batch_norm_samples,
    doc="Inference batch norm over axis 1: (x - mean) / sqrt(var + eps) * scale + bias.",
)
