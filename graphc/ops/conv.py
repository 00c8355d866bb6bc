"""conv2d (NCHW) and its backward ops.

Backward ops are full op records, so backward graphs go through the same passes
and codegen as forward ones; each is linear in its cotangent, so its own gradient
is again one of these ops: ``conv2d_grad_input(g, w)`` (a transposed convolution)
and ``conv2d_grad_weight(g, x)``.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ir import TensorType, check_infer
from . import window as W
from ._lazy import ops as O
from ._lazy import te, tir
from .registry import ANCHOR, REQUIRED, Sample, defop, rand
from .te_util import te_shape

# ---------------------------------------------------------------------------------------
# conv2d and its backward ops
# ---------------------------------------------------------------------------------------

_CONV_ATTRS = {"stride": (1, 1), "pad": (0, 0, 0, 0), "dilation": (1, 1), "groups": 1}


def _conv_window(x_shape, w_shape, stride, pad, dilation) -> tuple[W.Axis, W.Axis]:
    return W.window(x_shape[2:], tuple(w_shape[2:]), stride, pad, dilation)


def _conv2d_infer(x: TensorType, w: TensorType, stride, pad, dilation, groups):
    W.check_nchw(x)
    check_infer(w.rank == 4, f"weight must be [O, C/groups, KH, KW] (rank 4), got {list(w.shape)}")
    check_infer(dtypes.is_float(x.dtype) and x.dtype == w.dtype, f"needs float input and weight of one dtype, got {x.dtype} and {w.dtype}")
    check_infer(isinstance(groups, int) and not isinstance(groups, bool) and groups >= 1, f"groups must be an int >= 1, got {groups!r}")
    cin, cg = x.shape[1], w.shape[1]
    check_infer(cin == cg * groups, f"input has {cin} channels but weight expects {cg * groups} (groups={groups} x {cg})")
    check_infer(w.shape[0] % groups == 0, f"weight has {w.shape[0]} output channels, not divisible by groups={groups}")
    ah, aw = _conv_window(x.shape, w.shape, stride, pad, dilation)
    return TensorType(x.dtype, (x.shape[0], w.shape[0], ah.out, aw.out))


def _conv2d_grad_input_infer(g: TensorType, w: TensorType, stride, pad, dilation, groups, input_shape):
    W.check_shape_attr("input_shape", input_shape)
    fwd = _conv2d_infer(TensorType(g.dtype, input_shape), w, stride, pad, dilation, groups)
    check_infer(g.shape == fwd.shape, f"gradient is {list(g.shape)} but conv2d of a {list(input_shape)} input gives {list(fwd.shape)}")
    return TensorType(g.dtype, input_shape)


def _conv2d_grad_weight_infer(g: TensorType, x: TensorType, stride, pad, dilation, groups, weight_shape):
    W.check_shape_attr("weight_shape", weight_shape)
    fwd = _conv2d_infer(x, TensorType(g.dtype, weight_shape), stride, pad, dilation, groups)
    check_infer(g.shape == fwd.shape, f"gradient is {list(g.shape)} but conv2d with a {list(weight_shape)} weight gives {list(fwd.shape)}")
    return TensorType(g.dtype, weight_shape)


# -- references: grouped im2col + einsum, in float64 ------------------------------------


def _grouped(t: np.ndarray, groups: int) -> np.ndarray:
    """Split axis 1 of t (float64) into [groups, axis/groups]."""
    return t.astype(np.float64).reshape(t.shape[0], groups, -1, *t.shape[2:])


def _grouped_weight(w: np.ndarray, groups: int) -> np.ndarray:
    """[O, Cg, KH, KW] -> [groups, O/groups, Cg, KH, KW] in float64."""
    return w.astype(np.float64).reshape(groups, -1, *w.shape[1:])


def _conv2d_ref(x, w, stride, pad, dilation, groups):
    ah, aw = _conv_window(x.shape, w.shape, stride, pad, dilation)
    win = _grouped(W.np_windows(x.astype(np.float64), ah, aw), groups)  # [N, G, Cg, OH, OW, KH, KW]
    out = np.einsum("ngcyxij,gocij->ngoyx", win, _grouped_weight(w, groups))
    return out.reshape(x.shape[0], w.shape[0], ah.out, aw.out).astype(x.dtype)


def _conv2d_grad_input_ref(g, w, stride, pad, dilation, groups, input_shape):
    ah, aw = _conv_window(input_shape, w.shape, stride, pad, dilation)
    win = np.einsum("ngoyx,gocij->ngcyxij", _grouped(g, groups), _grouped_weight(w, groups))
    n, c = input_shape[:2]
    return W.np_unwindow(win.reshape(n, c, ah.out, aw.out, ah.k, aw.k), ah, aw).astype(g.dtype)


def _conv2d_grad_weight_ref(g, x, stride, pad, dilation, groups, weight_shape):
    ah, aw = _conv_window(x.shape, weight_shape, stride, pad, dilation)
    win = _grouped(W.np_windows(x.astype(np.float64), ah, aw), groups)
    return np.einsum("ngoyx,ngcyxij->gocij", _grouped(g, groups), win).reshape(weight_shape).astype(g.dtype)


# -- lowerings ---------------------------------------------------------------------------


def _conv2d_lower(x, w, stride, pad, dilation, groups):
    """Direct convolution; the loop nest (n, o, h, w, rc, rh, rw) and the weight read straight
    from the kernel argument are what the x86 conv2d rule (schedule_conv2d) expects."""
    n = te_shape(x)[0]
    o_all, cg = te_shape(w)[:2]
    og = o_all // groups
    ah, aw = _conv_window(te_shape(x), te_shape(w), stride, pad, dilation)
    xp = W.te_pad(x, ah, aw, tir.const(0, str(x.dtype)), keep=True)
    rc = te.reduce_axis((0, cg), name="rc")
    rh, rw = W.tap_axes(ah, aw)

    def element(b, o, i, j):
        c = rc if groups == 1 else o // og * cg + rc
        return te.sum(xp[b, c, ah.at(i, rh), aw.at(j, rw)] * w[o, rc, rh, rw], axis=[rc, rh, rw])

    return te.compute((n, o_all, ah.out, aw.out), element, name="conv2d", attrs={W.RULE: "conv2d"})


def _conv2d_grad_input_lower(g, w, stride, pad, dilation, groups, input_shape):
    """Transposed convolution: g spread onto the stride grid and padded by the kernel extent,
    then correlated with the spatially flipped kernel (no conditionals in the reduction)."""
    n, _, h, wd = input_shape
    o_all, cg = te_shape(w)[:2]
    og = o_all // groups
    ah, aw = _conv_window(input_shape, te_shape(w), stride, pad, dilation)
    zero = tir.const(0, str(g.dtype))

    def spread(b, o, y, z):  # g of the window whose tap 0 reads input (y, z) - (extent - 1); 0 where none does
        vh, oh = ah.window_at(y - (ah.extent - 1), 0)
        vw, ow = aw.window_at(z - (aw.extent - 1), 0)
        return tir.if_then_else(tir.all(vh, vw), g[b, o, oh, ow], zero)

    gs = te.compute((n, o_all, h + ah.extent - 1, wd + aw.extent - 1), spread, name="spread", attrs={W.KEEP: 1})
    ro = te.reduce_axis((0, og), name="ro")
    rh, rw = W.tap_axes(ah, aw)

    def element(b, c, y, z):
        o, ci = (ro, c) if groups == 1 else (c // cg * og + ro, c % cg)
        flipped = w[o, ci, ah.k - 1 - rh, aw.k - 1 - rw]
        return te.sum(gs[b, o, y + rh * ah.d, z + rw * aw.d] * flipped, axis=[ro, rh, rw])

    return te.compute(tuple(input_shape), element, name="conv2d_grad_input")


def _conv2d_grad_weight_lower(g, x, stride, pad, dilation, groups, weight_shape):
    """dW[o, c, kh, kw] = sum over (n, oh, ow) of g[n, o, oh, ow] * padded x at that tap."""
    n, o_all, oh_n, ow_n = te_shape(g)
    cg = weight_shape[1]
    og = o_all // groups
    ah, aw = _conv_window(te_shape(x), weight_shape, stride, pad, dilation)
    xp = W.te_pad(x, ah, aw, tir.const(0, str(x.dtype)), keep=True)
    rn, ri, rj = te.reduce_axis((0, n), name="rn"), te.reduce_axis((0, oh_n), name="ri"), te.reduce_axis((0, ow_n), name="rj")

    def element(o, c, kh, kw):
        ch = c if groups == 1 else o // og * cg + c
        return te.sum(g[rn, o, ri, rj] * xp[rn, ch, ah.at(ri, kh), aw.at(rj, kw)], axis=[rn, ri, rj])

    return te.compute(tuple(weight_shape), element, name="conv2d_grad_weight")


# -- gradients: conv2d(x, w) = A_w x = B_x w, so the backward ops are A_w^T g and B_x^T g -----


def _conv2d_grad(g, x, w, out, **attrs):
    return (
        O.conv2d_grad_input(g, w, input_shape=tuple(x.shape), **attrs),
        O.conv2d_grad_weight(g, x, weight_shape=tuple(w.shape), **attrs),
    )


def _conv2d_grad_input_grad(h, g, w, out, input_shape, **attrs):
    # <h, A_w^T g> = <A_w h, g> = <conv2d(h, w), g>
    return (O.conv2d(h, w, **attrs), O.conv2d_grad_weight(g, h, weight_shape=tuple(w.shape), **attrs))


def _conv2d_grad_weight_grad(h, g, x, out, weight_shape, **attrs):
    # <h, B_x^T g> = <conv2d(x, h), g> = <A_h x, g>
    return (O.conv2d(x, h, **attrs), O.conv2d_grad_input(g, h, input_shape=tuple(x.shape), **attrs))


# -- samples: one list of cases drives the forward op and both backward ops ----------------

_CONV_CASES = [  # (x shape, w shape, attrs, note)
    ((1, 3, 8, 8), (16, 3, 3, 3), {"pad": (1, 1, 1, 1)}, "3x3 pad 1, 16 out channels"),
    ((1, 3, 9, 9), (16, 3, 3, 3), {"stride": (2, 2), "pad": (1, 1, 1, 1)}, "stride 2, 16 out channels"),
    ((1, 8, 5, 5), (32, 8, 1, 1), {}, "1x1, 32 out channels"),
    ((2, 4, 7, 7), (6, 4, 3, 3), {"stride": (2, 2), "pad": (1, 1, 1, 1)}, "6 out channels"),
    ((1, 2, 9, 9), (4, 2, 3, 3), {"dilation": (2, 2), "pad": (2, 2, 2, 2)}, "dilation 2"),
    ((1, 4, 6, 7), (6, 2, 3, 2), {"groups": 2, "pad": (0, 1, 1, 2)}, "groups 2, asymmetric pad, 3x2 kernel"),
    ((1, 8, 6, 6), (8, 1, 3, 3), {"groups": 8, "stride": (2, 2), "pad": (1, 1, 1, 1)}, "depthwise stride 2"),
    ((1, 16, 5, 5), (16, 1, 3, 3), {"groups": 16, "pad": (1, 1, 1, 1)}, "depthwise, 16 channels"),
]
_CONV_TOL = {"rtol": 1e-4, "atol": 1e-4}


def _conv_out_shape(x_shape, w_shape, attrs) -> tuple[int, ...]:
    full = {**_CONV_ATTRS, **attrs}
    return _conv2d_infer(TensorType("f32", x_shape), TensorType("f32", w_shape), **full).shape


def _conv2d_samples(rng):
    return [Sample((rand(rng, *xs), rand(rng, *ws)), a, note, **_CONV_TOL) for xs, ws, a, note in _CONV_CASES]


def _conv2d_grad_input_samples(rng):
    return [
        Sample((rand(rng, *_conv_out_shape(xs, ws, a)), rand(rng, *ws)), {**a, "input_shape": xs}, note, **_CONV_TOL)
        for xs, ws, a, note in _CONV_CASES
    ]


def _conv2d_grad_weight_samples(rng):
    return [
        Sample((rand(rng, *_conv_out_shape(xs, ws, a)), rand(rng, *xs)), {**a, "weight_shape": ws}, note, **_CONV_TOL)
        for xs, ws, a, note in _CONV_CASES
    ]


conv2d = defop(
    "conv2d",
    infer=_conv2d_infer,
    ref=_conv2d_ref,
    lower=_conv2d_lower,
    grad=_conv2d_grad,
    fusion=ANCHOR,
    attrs=dict(_CONV_ATTRS),
    samples=_conv2d_samples,
    doc="x[N, C, H, W] * w[O, C/groups, KH, KW] -> [N, O, OH, OW]; pad is (top, left, bottom, right); no bias.",
)

conv2d_grad_input = defop(
    "conv2d_grad_input",
    infer=_conv2d_grad_input_infer,
    ref=_conv2d_grad_input_ref,
    lower=_conv2d_grad_input_lower,
    grad=_conv2d_grad_input_grad,
    fusion=ANCHOR,
    attrs={**_CONV_ATTRS, "input_shape": REQUIRED},
    samples=_conv2d_grad_input_samples,
    doc="Gradient of conv2d w.r.t. its input (a transposed convolution of g with w).",
)

conv2d_grad_weight = defop(
    "conv2d_grad_weight",
    infer=_conv2d_grad_weight_infer,
    ref=_conv2d_grad_weight_ref,
    lower=_conv2d_grad_weight_lower,
    grad=_conv2d_grad_weight_grad,
    fusion=ANCHOR,
    attrs={**_CONV_ATTRS, "weight_shape": REQUIRED},
    samples=_conv2d_grad_weight_samples,
    doc="Gradient of conv2d w.r.t. its weight (g correlated with the padded input).",
)
