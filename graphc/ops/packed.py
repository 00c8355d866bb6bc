"""Weights in the blocked layouts the CPU kernels read, and the ops that read them.

The layout pass (passes/layout.py) packs constant weights once, at compile time:
``pack_panels(w, panel)`` cuts axis 0 of ``w`` (the output features / channels) into
panels of ``panel`` rows and moves the panel axis innermost,
``w[N, *rest] -> wp[ceil(N / panel), *rest, panel]``, zero-padding the last panel.
A kernel then reads the ``panel`` output features of one reduction position
(k, or c/kh/kw) as contiguous vectors, and every output tile streams one
contiguous panel instead of ``panel`` rows far apart in memory.

* ``linear_packed(x, wp, n)`` is ``linear(x, w)`` with ``wp = pack_panels(w)`` and
  ``n`` the true number of output features (the padding is never output);
* ``conv2d_packed(x, wp, out_channels, stride, pad, dilation)`` is ``conv2d(x, w)``
  (groups = 1) with a packed weight.

The references unpack and call the plain ops' references, so the interpreter and
every numerics check see exactly the semantics of the ops they replace.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ir import TensorType, check_infer
from . import window as W
from ._lazy import ops as O
from ._lazy import te, tir
from .conv import _conv2d_infer, _conv2d_ref
from .linalg import _linear_infer, _matmul_ref
from .registry import ANCHOR, INJECTIVE, REQUIRED, Sample, defop, rand
from .te_util import te_shape

# ---------------------------------------------------------------------------------------
# pack_panels / unpacking
# ---------------------------------------------------------------------------------------


def _pack_infer(w: TensorType, panel):
    check_infer(w.rank >= 2, f"packs a weight of rank >= 2 ([N, ...]), got {list(w.shape)}")
    check_infer(isinstance(panel, int) and not isinstance(panel, bool) and panel >= 1, f"panel must be an int >= 1, got {panel!r}")
    return w.with_shape((-(-w.shape[0] // panel), *w.shape[1:], panel))


def pack_ref(w: np.ndarray, panel: int) -> np.ndarray:
    n = w.shape[0]
    nb = -(-n // panel)
    padded = np.zeros((nb * panel, *w.shape[1:]), w.dtype)
    padded[:n] = w
    return np.ascontiguousarray(np.moveaxis(padded.reshape(nb, panel, *w.shape[1:]), 1, -1))


def unpack_ref(wp: np.ndarray, n: int) -> np.ndarray:
    """The weight `wp` was packed from (its first n rows)."""
    return np.moveaxis(wp, -1, 1).reshape(-1, *wp.shape[1:-1])[:n]


def _pack_lower(w, panel):
    n = te_shape(w)[0]
    shape = (-(-n // panel), *te_shape(w)[1:], panel)
    zero = tir.const(0, str(w.dtype))

    def element(b, *idx):
        *rest, p = idx
        row = b * panel + p
        if n % panel == 0:
            return w[(row, *rest)]
        return tir.if_then_else(row < n, w[(tir.min(row, n - 1), *rest)], zero)

    return te.compute(shape, element, name="pack_panels")


def unpack(wp, n: int):
    """Graph ops for the weight a packed weight holds: the inverse of pack_panels (gradients use it)."""
    rank = len(wp.shape)
    perm = (0, rank - 1, *range(1, rank - 1))  # [NB, *rest, P] -> [NB, P, *rest]
    rows = O.transpose(wp, perm=perm).reshape((wp.shape[0] * wp.shape[-1], *wp.shape[1:-1]))
    return rows if rows.shape[0] == n else O.slice(rows, starts=(0,), ends=(n,), axes=(0,))


def _pack_grad(g, w, out, panel):
    return (unpack(g, w.shape[0]),)


def _pack_samples(rng):
    return [
        Sample((rand(rng, 8, 5),), {"panel": 4}, note="exact panels"),
        Sample((rand(rng, 10, 3, 2, 2),), {"panel": 4}, note="conv weight, last panel padded"),
        Sample((rand(rng, 3, 7),), {"panel": 16}, note="one padded panel"),
    ]


pack_panels = defop("pack_panels", infer=_pack_infer, ref=pack_ref, lower=_pack_lower, grad=_pack_grad, fusion=INJECTIVE,
                    attrs={"panel": REQUIRED}, samples=_pack_samples)

# ---------------------------------------------------------------------------------------
# linear_packed
# ---------------------------------------------------------------------------------------


def _check_packed(wp: TensorType, n, what: str):
    check_infer(isinstance(n, int) and not isinstance(n, bool) and n >= 1, f"{what} must be an int >= 1, got {n!r}")
    nb, panel = wp.shape[0], wp.shape[-1]
    check_infer((nb - 1) * panel < n <= nb * panel, f"{what}={n} does not fill the packed weight's {nb} panels of {panel}")


def _linear_packed_infer(x: TensorType, wp: TensorType, n):
    check_infer(wp.rank == 3, f"packed weight must be [N/panel, K, panel] (rank 3), got {list(wp.shape)}")
    _check_packed(wp, n, "n")
    return _linear_infer(x, TensorType(wp.dtype, (n, wp.shape[1])))


def _crop(full, keep: int, axis: int):
    """`full` without the padded tail of `axis` (TE): the output the packed op promises."""
    if te_shape(full)[axis] == keep:
        return full
    shape = list(te_shape(full))
    shape[axis] = keep
    return te.compute(tuple(shape), lambda *i: full[i], name="crop")


def _linear_packed_lower(x, wp, n):
    """Computes all nb * panel columns (the padding reads zeros) then crops: the schedule's
    register tile covers whole panels and only the write-back is bounded by n."""
    *lead, kdim = te_shape(x)
    nb, _, panel = te_shape(wp)
    k = te.reduce_axis((0, kdim), name="k")

    def element(*idx):
        *li, j = idx
        return te.sum(x[(*li, k)] * wp[j // panel, k, j % panel], axis=k)

    full = te.compute((*lead, nb * panel), element, name="linear_packed", attrs={W.RULE: "linear_packed"})
    return _crop(full, n, len(lead))


def _linear_packed_grad(g, x, wp, out, n):
    gx, gw = O.linear.grad(g, x, unpack(wp, n), out)
    return (gx, O.pack_panels(gw, panel=wp.shape[-1]))


def _linear_packed_samples(rng):
    cases = [((4, 8), (6, 8), 4, "n a multiple of the panel"), ((2, 3, 17), (10, 17), 16, "3-d input, one padded panel"),
             ((7, 33), (19, 33), 8, "awkward sizes, last panel padded"), ((5,), (3, 5), 2, "1-d input")]
    out = []
    for xs, ws, panel, note in cases:
        w = rand(rng, *ws)
        out.append(Sample((rand(rng, *xs), pack_ref(w, panel)), {"n": ws[0]}, note, rtol=1e-4, atol=1e-5))
    return out


linear_packed = defop(
    "linear_packed",
    infer=_linear_packed_infer,
    ref=lambda x, wp, n: _matmul_ref(x, np.swapaxes(unpack_ref(wp, n), 0, 1)),
    lower=_linear_packed_lower,
    grad=_linear_packed_grad,
    fusion=ANCHOR,
    attrs={"n": REQUIRED},
    samples=_linear_packed_samples,
)

# ---------------------------------------------------------------------------------------
# conv2d_packed (groups = 1)
# ---------------------------------------------------------------------------------------

_CONV_ATTRS = {"out_channels": REQUIRED, "stride": (1, 1), "pad": (0, 0, 0, 0), "dilation": (1, 1)}


def _conv_weight_type(wp: TensorType, out_channels) -> TensorType:
    return TensorType(wp.dtype, (out_channels, *wp.shape[1:-1]))


def _conv2d_packed_infer(x: TensorType, wp: TensorType, out_channels, stride, pad, dilation):
    check_infer(wp.rank == 5, f"packed weight must be [O/panel, C, KH, KW, panel] (rank 5), got {list(wp.shape)}")
    check_infer(dtypes.is_float(wp.dtype), f"needs a float weight, got {wp.dtype}")
    _check_packed(wp, out_channels, "out_channels")
    return _conv2d_infer(x, _conv_weight_type(wp, out_channels), stride, pad, dilation, 1)


# a 1x1 convolution is computed as a GEMM over output pixels when their count is a
# multiple of the widest CPU vector (16 f32 lanes, AVX-512): every tile row is then whole vectors
GEMM_PIXEL_MULTIPLE = 16


def conv_as_gemm(kernel: tuple[int, int], stride, pad, out_pixels: int) -> bool:
    """Whether conv2d_packed computes this conv as ``out[n, o, p] = sum_c w[o, c] * x[n, c, p]``
    over the flattened pixels p: 1x1 taps, stride 1, no padding, and whole vectors of pixels."""
    return tuple(kernel) == (1, 1) and tuple(stride) == (1, 1) and not any(pad) and out_pixels % GEMM_PIXEL_MULTIPLE == 0


def _conv1x1_gemm(x, wp, out_channels):
    """The 1x1 case as a GEMM: rows are output channels (one weight scalar broadcast per row
    and reduction step, contiguous in the packed panel), columns the flattened output pixels
    (contiguous input and output vectors in NCHW); the crop restores [n, o, h, w]."""
    n, cin, h, w = te_shape(x)
    ob, _, _, _, panel = te_shape(wp)
    rc = te.reduce_axis((0, cin), name="rc")

    def element(b, o, p):
        return te.sum(x[b, rc, p // w, p % w] * wp[o // panel, rc, 0, 0, o % panel], axis=rc)

    full = te.compute((n, ob * panel, h * w), element, name="conv2d_packed", attrs={W.RULE: "conv2d_packed"})
    return te.compute((n, out_channels, h, w), lambda b, o, i, j: full[b, o, i * w + j], name="crop")


def _conv2d_packed_lower(x, wp, out_channels, stride, pad, dilation):
    """Direct convolution over all ob * panel channels (padding channels read zero weights),
    cropped to out_channels; the loop nest (n, o, h, w, rc, rh, rw) is what the x86
    conv2d_packed rule expects. 1x1 convs over whole vectors of pixels: `_conv1x1_gemm`."""
    n = te_shape(x)[0]
    ob, cin, kh, kw, panel = te_shape(wp)
    ah, aw = W.window(te_shape(x)[2:], (kh, kw), stride, pad, dilation)
    if conv_as_gemm((kh, kw), stride, pad, ah.out * aw.out):
        return _conv1x1_gemm(x, wp, out_channels)
    xp = W.te_pad(x, ah, aw, tir.const(0, str(x.dtype)), keep=True)
    rc = te.reduce_axis((0, cin), name="rc")
    rh, rw = W.tap_axes(ah, aw)

    def element(b, o, i, j):
        return te.sum(xp[b, rc, ah.at(i, rh), aw.at(j, rw)] * wp[o // panel, rc, rh, rw, o % panel], axis=[rc, rh, rw])

    full = te.compute((n, ob * panel, ah.out, aw.out), element, name="conv2d_packed", attrs={W.RULE: "conv2d_packed"})
    return _crop(full, out_channels, 1)


def _conv2d_packed_grad(g, x, wp, out, out_channels, **attrs):
    gx, gw = O.conv2d.grad(g, x, unpack(wp, out_channels), out, groups=1, **attrs)
    return (gx, O.pack_panels(gw, panel=wp.shape[-1]))


def _conv2d_packed_samples(rng):
    cases = [
        ((1, 3, 8, 8), (16, 3, 3, 3), 16, {"pad": (1, 1, 1, 1)}, "3x3 pad 1, one panel"),
        ((2, 4, 9, 9), (12, 4, 3, 3), 8, {"stride": (2, 2), "pad": (1, 1, 1, 1)}, "stride 2, last panel padded"),
        ((1, 8, 5, 5), (32, 8, 1, 1), 16, {}, "1x1, two panels"),
        ((1, 2, 9, 7), (5, 2, 3, 2), 4, {"dilation": (2, 1), "pad": (2, 0, 1, 1)}, "dilation, asymmetric pad"),
        ((2, 8, 4, 8), (10, 8, 1, 1), 6, {}, "1x1 over 32 pixels: a GEMM, last 6-row panel padded"),
    ]
    out = []
    for xs, ws, panel, attrs, note in cases:
        w = rand(rng, *ws)
        out.append(Sample((rand(rng, *xs), pack_ref(w, panel)), {"out_channels": ws[0], **attrs}, note, rtol=1e-4, atol=1e-4))
    return out


conv2d_packed = defop(
    "conv2d_packed",
    infer=_conv2d_packed_infer,
    ref=lambda x, wp, out_channels, stride, pad, dilation: _conv2d_ref(x, unpack_ref(wp, out_channels), stride, pad, dilation, 1),
    lower=_conv2d_packed_lower,
    grad=_conv2d_packed_grad,
    fusion=ANCHOR,
    attrs=_CONV_ATTRS,
    samples=_conv2d_packed_samples,
)
