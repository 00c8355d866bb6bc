"""NCHW convolution, pooling and batch norm, with the backward ops their gradients use.

Every sliding-window op here shares one piece of geometry: `_Axis`, one spatial
axis of a window sweep (input length, kernel taps, stride, padding, dilation,
PyTorch's output-length rules). It gives the numpy references their window
indices and the TE lowerings their index arithmetic, both forward (which input a
window tap reads) and backward (which window reads an input at a given tap).
Padding is always (top, left, bottom, right).

Backward ops are full op records, so backward graphs go through the same passes
and codegen as forward ones; each is linear in its cotangent, so its own gradient
is again one of these ops:

* ``conv2d_grad_input(g, w)`` (a transposed convolution) and ``conv2d_grad_weight(g, x)``;
* ``max_pool2d_grad(g, x)`` routes g to each window's first max in x, and its
  adjoint ``max_pool2d_select(h, x)`` reads h at each window's first max in x;
* ``avg_pool2d_grad(g)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import dtypes
from ..ir import TensorType, check_infer
from ._lazy import ops as O
from ._lazy import te, tir
from .registry import ANCHOR, ELEMWISE, REQUIRED, Sample, defop, rand

# block annotations read by the schedule rules (graphc.codegen.schedule.common; not imported:
# op records must import without the TVM compiler)
_RULE = "graphc_rule"  # which anchor schedule rule fits this stage
_KEEP = "graphc_keep"  # materialize this stage (padding) instead of inlining it into its consumer

# ---------------------------------------------------------------------------------------
# window geometry (shared by conv, pools and their backward ops)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Axis:
    """One spatial axis of a sliding window: input length, taps, stride, pads, dilation."""

    size: int
    k: int
    s: int
    lo: int  # padding before (top / left)
    hi: int  # padding after (bottom / right)
    d: int = 1
    ceil_mode: bool = False

    @property
    def extent(self) -> int:
        """Input positions one (dilated) window spans."""
        return (self.k - 1) * self.d + 1

    @property
    def out(self) -> int:
        """Number of windows (PyTorch's pooling_output_shape, with separate lo/hi pads)."""
        span = self.size + self.lo + self.hi - self.extent
        n = (span + (self.s - 1 if self.ceil_mode else 0)) // self.s + 1
        if self.ceil_mode and (n - 1) * self.s >= self.size + self.lo:
            n -= 1  # the last window must start inside the input or the left padding
        return n

    @property
    def padded(self) -> int:
        """Length of the padded input all windows fit in (ceil_mode windows may overhang the padding)."""
        return max(self.size + self.lo + self.hi, (self.out - 1) * self.s + self.extent)

    def at(self, o, r):
        """Padded-input position read by tap r of window o (ints, numpy arrays or TIR expressions)."""
        return o * self.s + r * self.d

    def taps(self) -> np.ndarray:
        """[out, k]: the padded-input position of every tap of every window."""
        return self.at(np.arange(self.out)[:, None], np.arange(self.k)[None, :])

    def window_at(self, i, r):
        """TE, backward: the window whose tap r reads input position i, as (valid, window clamped into range)."""
        p = i + self.lo - r * self.d  # = window * s when some window reads i at tap r
        o = tir.floordiv(p, self.s)
        valid = tir.all(p >= 0, tir.floormod(p, self.s) == 0, o < self.out)
        return valid, tir.max(tir.min(o, self.out - 1), 0)

    def count(self, o, include_pad: bool, minimum, maximum):
        """Elements average pooling divides window o by (PyTorch's rules); numpy or TIR via minimum/maximum."""
        start = o * self.s - self.lo
        end = minimum(start + self.extent, self.size + self.hi)
        if include_pad:
            return end - start
        return minimum(end, self.size) - maximum(start, 0)


def _check_ints(name: str, v, n: int, low: int) -> None:
    ok = isinstance(v, tuple) and len(v) == n and all(isinstance(e, int) and not isinstance(e, bool) and e >= low for e in v)
    check_infer(ok, f"{name} must be a tuple of {n} ints >= {low}, got {v!r}")


def _window(hw, kernel, stride, pad, dilation=(1, 1), ceil_mode=False) -> tuple[_Axis, _Axis]:
    """Validated (H axis, W axis) of a window sweep over an input of spatial size hw."""
    for name, v, n, low in (("kernel", kernel, 2, 1), ("stride", stride, 2, 1), ("pad", pad, 4, 0), ("dilation", dilation, 2, 1)):
        _check_ints(name, v, n, low)
    check_infer(isinstance(ceil_mode, bool), f"ceil_mode must be a bool, got {ceil_mode!r}")
    ah = _Axis(int(hw[0]), kernel[0], stride[0], pad[0], pad[2], dilation[0], ceil_mode)
    aw = _Axis(int(hw[1]), kernel[1], stride[1], pad[1], pad[3], dilation[1], ceil_mode)
    check_infer(
        ah.out >= 1 and aw.out >= 1,
        f"the {kernel[0]}x{kernel[1]} kernel (dilation {dilation}) does not fit the {hw[0]}x{hw[1]} input padded by {pad}",
    )
    return ah, aw


def _pool_window(x_shape, kernel, stride, pad, dilation=(1, 1), ceil_mode=False) -> tuple[_Axis, _Axis]:
    """Pools: stride None means the kernel; padding at most half the window, as PyTorch requires
    (so no window lies entirely in the padding)."""
    _check_ints("kernel", kernel, 2, 1)
    ah, aw = _window(x_shape[2:], kernel, kernel if stride is None else stride, pad, dilation, ceil_mode)
    for ax in (ah, aw):
        check_infer(max(ax.lo, ax.hi) <= ax.extent // 2, f"padding {pad} is more than half of the {kernel} window (dilation {dilation})")
    return ah, aw


def _check_nchw(x: TensorType) -> None:
    check_infer(x.rank == 4, f"input must be NCHW (rank 4), got {list(x.shape)}")


def _check_shape_attr(name: str, shape) -> None:
    _check_ints(name, shape, 4, 0)


def _pooled(x: TensorType, ah: _Axis, aw: _Axis) -> TensorType:
    return x.with_shape((*x.shape[:2], ah.out, aw.out))


# -- numpy: windows as fancy-index views (vectorized im2col) ----------------------------


def _np_lowest(dtype: np.dtype):
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _np_pad(x: np.ndarray, ah: _Axis, aw: _Axis, fill) -> np.ndarray:
    out = np.full((*x.shape[:2], ah.padded, aw.padded), fill, dtype=x.dtype)
    out[:, :, ah.lo : ah.lo + ah.size, aw.lo : aw.lo + aw.size] = x
    return out


def _window_index(ah: _Axis, aw: _Axis) -> tuple:
    """Index of a padded [N, C, PH, PW] array giving [N, C, OH, OW, KH, KW] windows."""
    return (slice(None), slice(None), ah.taps()[:, None, :, None], aw.taps()[None, :, None, :])


def _np_windows(x: np.ndarray, ah: _Axis, aw: _Axis, fill=0) -> np.ndarray:
    """[N, C, OH, OW, KH, KW]: every window of x padded with `fill`."""
    return _np_pad(x, ah, aw, fill)[_window_index(ah, aw)]


def _np_unwindow(win: np.ndarray, ah: _Axis, aw: _Axis) -> np.ndarray:
    """Adjoint of _np_windows: add [N, C, OH, OW, KH, KW] window elements back onto the unpadded input."""
    out = np.zeros((*win.shape[:2], ah.padded, aw.padded), win.dtype)
    np.add.at(out, _window_index(ah, aw), win)
    return out[:, :, ah.lo : ah.lo + ah.size, aw.lo : aw.lo + aw.size]


def _np_window_argmax(x: np.ndarray, ah: _Axis, aw: _Axis) -> np.ndarray:
    """[N, C, OH, OW]: flat tap index (kh * KW + kw) of each window's first max."""
    win = _np_windows(x, ah, aw, _np_lowest(x.dtype))
    return win.reshape(*win.shape[:4], -1).argmax(-1)


# -- TE ---------------------------------------------------------------------------------


def _shape(t) -> tuple[int, ...]:
    return tuple(int(d) for d in t.shape)


def _lowest(dtype: str):
    """TE fill for max pooling's padding: -inf for floats, the minimum for ints."""
    return tir.const(float("-inf"), dtype) if "float" in dtype else tir.min_value(dtype)


def _te_pad(x, ah: _Axis, aw: _Axis, fill, keep: bool = False):
    """x padded to [N, C, ah.padded, aw.padded] with `fill` (x itself when nothing needs padding)."""
    if ah.lo == aw.lo == 0 and (ah.padded, aw.padded) == (ah.size, aw.size):
        return x
    n, c = _shape(x)[:2]

    def element(b, ch, y, z):
        iy, iz = y - ah.lo, z - aw.lo
        return tir.if_then_else(tir.all(iy >= 0, iy < ah.size, iz >= 0, iz < aw.size), x[b, ch, iy, iz], fill)

    return te.compute((n, c, ah.padded, aw.padded), element, name="pad", attrs={_KEEP: 1} if keep else None)


def _tap_axes(ah: _Axis, aw: _Axis):
    """Reduce axes over a window's taps."""
    return te.reduce_axis((0, ah.k), name="rh"), te.reduce_axis((0, aw.k), name="rw")


def _tree(combine, vals: list):
    """combine(...) over vals as a balanced expression tree (shallow, and pairwise for sums)."""
    if len(vals) == 1:
        return vals[0]
    half = len(vals) // 2
    return combine(_tree(combine, vals[:half]), _tree(combine, vals[half:]))


# Window ops below unroll their taps into one expression per element instead of using a
# reduce axis: pooling windows are small, and a spatial stage (unlike a reduction) gets
# vectorized along the innermost axis by the generic CPU schedule.


def _te_window_fold(xp, ah: _Axis, aw: _Axis, combine, name: str):
    """[N, C, OH, OW]: combine (max, add) over each window of the padded input xp."""

    def element(n, c, i, j):
        return _tree(combine, [xp[n, c, ah.at(i, r), aw.at(j, q)] for r in range(ah.k) for q in range(aw.k)])

    return te.compute((*_shape(xp)[:2], ah.out, aw.out), element, name=name)


def _te_unwindow(shape, dtype: str, ah: _Axis, aw: _Axis, value, name: str):
    """Backward of a window sweep: in[n, c, y, x] = sum over taps (r, q) of value(n, c, oh, ow, r, q),
    (oh, ow) being the window that reads (y, x) at that tap (taps no window reads add nothing)."""
    zero = tir.const(0, dtype)

    def element(n, c, y, z):
        terms = []
        for r in range(ah.k):
            for q in range(aw.k):
                vh, oh = ah.window_at(y, r)
                vw, ow = aw.window_at(z, q)
                terms.append(tir.if_then_else(tir.all(vh, vw), value(n, c, oh, ow, r, q), zero))
        return _tree(lambda a, b: a + b, terms)

    return te.compute(tuple(shape), element, name=name)


def _te_divide(t, count, name: str):
    """t[n, c, i, j] / count(i, j) (an integer expression), in t's dtype."""
    dtype = str(t.dtype)
    return te.compute(_shape(t), lambda n, c, i, j: t[n, c, i, j] / tir.Cast(dtype, count(i, j)), name=name)


def _argmax_combine(a, b):
    """(tap, value) pairs: the larger value wins, the smaller tap on ties. Commutative, so every
    reduction order gives PyTorch's first max."""
    take = tir.any(b[1] > a[1], tir.all(b[1] == a[1], b[0] < a[0]))
    return tir.Select(take, b[0], a[0]), tir.Select(take, b[1], a[1])


def _argmax_identity(tap_dtype, value_dtype):
    return tir.const(2**31 - 1, tap_dtype), _lowest(str(value_dtype))


def _te_window_argmax(x, ah: _Axis, aw: _Axis):
    """int32 [N, C, OH, OW]: flat tap index (kh * KW + kw) of each window's first max.
    (A reduction: unrolled, each (tap, value) combine would repeat its operands' expressions.)"""
    xp = _te_pad(x, ah, aw, _lowest(str(x.dtype)))
    rh, rw = _tap_axes(ah, aw)
    argmax = te.comm_reducer(_argmax_combine, _argmax_identity, name="argmax")
    tap, _ = te.compute(
        (*_shape(x)[:2], ah.out, aw.out),
        lambda n, c, i, j: argmax((rh * aw.k + rw, xp[n, c, ah.at(i, rh), aw.at(j, rw)]), axis=[rh, rw]),
        name="window_argmax",
    )
    return tap


# ---------------------------------------------------------------------------------------
# conv2d and its backward ops
# ---------------------------------------------------------------------------------------

_CONV_ATTRS = {"stride": (1, 1), "pad": (0, 0, 0, 0), "dilation": (1, 1), "groups": 1}


def _conv_window(x_shape, w_shape, stride, pad, dilation) -> tuple[_Axis, _Axis]:
    return _window(x_shape[2:], tuple(w_shape[2:]), stride, pad, dilation)


def _conv2d_infer(x: TensorType, w: TensorType, stride, pad, dilation, groups):
    _check_nchw(x)
    check_infer(w.rank == 4, f"weight must be [O, C/groups, KH, KW] (rank 4), got {list(w.shape)}")
    check_infer(dtypes.is_float(x.dtype) and x.dtype == w.dtype, f"needs float input and weight of one dtype, got {x.dtype} and {w.dtype}")
    check_infer(isinstance(groups, int) and not isinstance(groups, bool) and groups >= 1, f"groups must be an int >= 1, got {groups!r}")
    cin, cg = x.shape[1], w.shape[1]
    check_infer(cin == cg * groups, f"input has {cin} channels but weight expects {cg * groups} (groups={groups} x {cg})")
    check_infer(w.shape[0] % groups == 0, f"weight has {w.shape[0]} output channels, not divisible by groups={groups}")
    ah, aw = _conv_window(x.shape, w.shape, stride, pad, dilation)
    return TensorType(x.dtype, (x.shape[0], w.shape[0], ah.out, aw.out))


def _conv2d_grad_input_infer(g: TensorType, w: TensorType, stride, pad, dilation, groups, input_shape):
    _check_shape_attr("input_shape", input_shape)
    fwd = _conv2d_infer(TensorType(g.dtype, input_shape), w, stride, pad, dilation, groups)
    check_infer(g.shape == fwd.shape, f"gradient is {list(g.shape)} but conv2d of a {list(input_shape)} input gives {list(fwd.shape)}")
    return TensorType(g.dtype, input_shape)


def _conv2d_grad_weight_infer(g: TensorType, x: TensorType, stride, pad, dilation, groups, weight_shape):
    _check_shape_attr("weight_shape", weight_shape)
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
    win = _grouped(_np_windows(x.astype(np.float64), ah, aw), groups)  # [N, G, Cg, OH, OW, KH, KW]
    out = np.einsum("ngcyxij,gocij->ngoyx", win, _grouped_weight(w, groups))
    return out.reshape(x.shape[0], w.shape[0], ah.out, aw.out).astype(x.dtype)


def _conv2d_grad_input_ref(g, w, stride, pad, dilation, groups, input_shape):
    ah, aw = _conv_window(input_shape, w.shape, stride, pad, dilation)
    win = np.einsum("ngoyx,gocij->ngcyxij", _grouped(g, groups), _grouped_weight(w, groups))
    n, c = input_shape[:2]
    return _np_unwindow(win.reshape(n, c, ah.out, aw.out, ah.k, aw.k), ah, aw).astype(g.dtype)


def _conv2d_grad_weight_ref(g, x, stride, pad, dilation, groups, weight_shape):
    ah, aw = _conv_window(x.shape, weight_shape, stride, pad, dilation)
    win = _grouped(_np_windows(x.astype(np.float64), ah, aw), groups)
    return np.einsum("ngoyx,ngcyxij->gocij", _grouped(g, groups), win).reshape(weight_shape).astype(g.dtype)


# -- lowerings ---------------------------------------------------------------------------


def _conv2d_lower(x, w, stride, pad, dilation, groups):
    """Direct convolution; the loop nest (n, o, h, w, rc, rh, rw) and the weight read straight
    from the kernel argument are what the x86 conv2d rule (schedule_conv2d) expects."""
    n = _shape(x)[0]
    o_all, cg = _shape(w)[:2]
    og = o_all // groups
    ah, aw = _conv_window(_shape(x), _shape(w), stride, pad, dilation)
    xp = _te_pad(x, ah, aw, tir.const(0, str(x.dtype)), keep=True)
    rc = te.reduce_axis((0, cg), name="rc")
    rh, rw = _tap_axes(ah, aw)

    def element(b, o, i, j):
        c = rc if groups == 1 else o // og * cg + rc
        return te.sum(xp[b, c, ah.at(i, rh), aw.at(j, rw)] * w[o, rc, rh, rw], axis=[rc, rh, rw])

    return te.compute((n, o_all, ah.out, aw.out), element, name="conv2d", attrs={_RULE: "conv2d"})


def _conv2d_grad_input_lower(g, w, stride, pad, dilation, groups, input_shape):
    """Transposed convolution: g spread onto the stride grid and padded by the kernel extent,
    then correlated with the spatially flipped kernel (no conditionals in the reduction)."""
    n, _, h, wd = input_shape
    o_all, cg = _shape(w)[:2]
    og = o_all // groups
    ah, aw = _conv_window(input_shape, _shape(w), stride, pad, dilation)
    zero = tir.const(0, str(g.dtype))

    def spread(b, o, y, z):  # g of the window whose tap 0 reads input (y, z) - (extent - 1); 0 where none does
        vh, oh = ah.window_at(y - (ah.extent - 1), 0)
        vw, ow = aw.window_at(z - (aw.extent - 1), 0)
        return tir.if_then_else(tir.all(vh, vw), g[b, o, oh, ow], zero)

    gs = te.compute((n, o_all, h + ah.extent - 1, wd + aw.extent - 1), spread, name="spread", attrs={_KEEP: 1})
    ro = te.reduce_axis((0, og), name="ro")
    rh, rw = _tap_axes(ah, aw)

    def element(b, c, y, z):
        o, ci = (ro, c) if groups == 1 else (c // cg * og + ro, c % cg)
        flipped = w[o, ci, ah.k - 1 - rh, aw.k - 1 - rw]
        return te.sum(gs[b, o, y + rh * ah.d, z + rw * aw.d] * flipped, axis=[ro, rh, rw])

    return te.compute(tuple(input_shape), element, name="conv2d_grad_input")


def _conv2d_grad_weight_lower(g, x, stride, pad, dilation, groups, weight_shape):
    """dW[o, c, kh, kw] = sum over (n, oh, ow) of g[n, o, oh, ow] * padded x at that tap."""
    n, o_all, oh_n, ow_n = _shape(g)
    cg = weight_shape[1]
    og = o_all // groups
    ah, aw = _conv_window(_shape(x), weight_shape, stride, pad, dilation)
    xp = _te_pad(x, ah, aw, tir.const(0, str(x.dtype)), keep=True)
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

# ---------------------------------------------------------------------------------------
# max_pool2d, its backward op and that op's adjoint
# ---------------------------------------------------------------------------------------

_MAX_POOL_ATTRS = {"kernel": REQUIRED, "stride": None, "pad": (0, 0, 0, 0), "dilation": (1, 1), "ceil_mode": False}


def _max_pool_infer(x: TensorType, **attrs):
    _check_nchw(x)
    check_infer(x.dtype != "bool", "needs a numeric tensor, got bool")
    return _pooled(x, *_pool_window(x.shape, **attrs))


def _max_pool_grad_infer(g: TensorType, x: TensorType, **attrs):
    pooled = _max_pool_infer(x, **attrs)
    check_infer(
        dtypes.is_float(g.dtype) and g.dtype == x.dtype, f"needs float gradient and input of one dtype, got {g.dtype} and {x.dtype}"
    )
    check_infer(g.shape == pooled.shape, f"gradient is {list(g.shape)} but pooling the {list(x.shape)} input gives {list(pooled.shape)}")
    return x


def _max_pool_select_infer(h: TensorType, x: TensorType, **attrs):
    pooled = _max_pool_infer(x, **attrs)
    check_infer(h.dtype == x.dtype and h.shape == x.shape, f"the selected tensor must match the input, got {h} and {x}")
    return pooled


def _max_pool_ref(x, **attrs):
    ah, aw = _pool_window(x.shape, **attrs)
    return _np_windows(x, ah, aw, _np_lowest(x.dtype)).max(axis=(4, 5))


def _max_pool_grad_ref(g, x, **attrs):
    ah, aw = _pool_window(x.shape, **attrs)
    onehot = _np_window_argmax(x, ah, aw)[..., None] == np.arange(ah.k * aw.k)
    win = (onehot * g.astype(np.float64)[..., None]).reshape(*g.shape, ah.k, aw.k)
    return _np_unwindow(win, ah, aw).astype(g.dtype)


def _max_pool_select_ref(h, x, **attrs):
    ah, aw = _pool_window(x.shape, **attrs)
    tap = _np_window_argmax(x, ah, aw)
    win = _np_windows(h, ah, aw)
    return np.take_along_axis(win.reshape(*tap.shape, -1), tap[..., None], -1)[..., 0]


def _max_pool_lower(x, **attrs):
    ah, aw = _pool_window(_shape(x), **attrs)
    return _te_window_fold(_te_pad(x, ah, aw, _lowest(str(x.dtype))), ah, aw, tir.max, name="max_pool2d")


def _max_pool_grad_lower(g, x, **attrs):
    ah, aw = _pool_window(_shape(x), **attrs)
    tap = _te_window_argmax(x, ah, aw)
    zero = tir.const(0, str(g.dtype))

    def value(n, c, oh, ow, rh, rw):
        return tir.Select(tap[n, c, oh, ow] == rh * aw.k + rw, g[n, c, oh, ow], zero)

    return _te_unwindow(_shape(x), str(g.dtype), ah, aw, value, name="max_pool2d_grad")


def _max_pool_select_lower(h, x, **attrs):
    ah, aw = _pool_window(_shape(x), **attrs)
    tap = _te_window_argmax(x, ah, aw)

    def element(n, c, i, j):
        t = tap[n, c, i, j]
        y, z = ah.at(i, t // aw.k) - ah.lo, aw.at(j, t % aw.k) - aw.lo
        inside = tir.all(y >= 0, y < ah.size, z >= 0, z < aw.size)  # (padding wins only if the input is -inf there)
        return tir.if_then_else(inside, h[n, c, y, z], tir.const(0, str(h.dtype)))

    return te.compute(_shape(tap), element, name="max_pool2d_select")


_MAX_POOL_CASES = [  # (x shape, attrs, note)
    ((2, 3, 8, 8), {"kernel": (2, 2)}, "2x2/2"),
    ((1, 4, 9, 9), {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1, 1, 1)}, "3x3/2 pad 1"),
    ((1, 2, 7, 7), {"kernel": (2, 2), "ceil_mode": True}, "ceil_mode"),
    ((1, 2, 8, 8), {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1, 1, 1), "ceil_mode": True}, "3x3/2 pad 1 ceil_mode"),
    ((1, 2, 9, 8), {"kernel": (2, 3), "stride": (1, 2), "dilation": (2, 1), "pad": (1, 0, 0, 1)}, "dilation, asymmetric"),
]


def _max_pool_samples(rng):
    x_int = rand(rng, 1, 3, 6, 6, dtype="int32", low=-50, high=50)
    int_case = Sample((x_int,), {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1, 1, 1)}, "int32")
    return [Sample((rand(rng, *xs),), a, note) for xs, a, note in _MAX_POOL_CASES] + [int_case]


def _max_pool_backward_samples(rng, grad_first: bool):
    """(g, x) for max_pool2d_grad or (h, x) for max_pool2d_select; one case has tied maxima."""
    out = []
    for xs, a, note in _MAX_POOL_CASES + [((1, 3, 6, 6), {"kernel": (3, 3), "stride": (1, 1)}, "ties")]:
        # ties are fine for the gradient check here: these ops are linear in their first input, x is not differentiated
        x = rng.integers(0, 3, size=xs).astype(np.float32) if note == "ties" else rand(rng, *xs)
        pooled = _max_pool_infer(TensorType.of(x), **{**_MAX_POOL_ATTRS, **a}).shape
        other = rand(rng, *(pooled if grad_first else xs))
        out.append(Sample((other, x), a, note))
    return out


# max_pool2d_grad(g, x) = S_x^T g, S_x selecting each window's argmax; both are linear in g / h
max_pool2d = defop(
    "max_pool2d",
    infer=_max_pool_infer,
    ref=_max_pool_ref,
    lower=_max_pool_lower,
    grad=lambda g, x, out, **attrs: (O.max_pool2d_grad(g, x, **attrs),),
    fusion=ANCHOR,
    attrs=dict(_MAX_POOL_ATTRS),
    samples=_max_pool_samples,
    doc="Max pooling (PyTorch semantics; pad (top, left, bottom, right) with -inf; stride None = kernel).",
)

max_pool2d_grad = defop(
    "max_pool2d_grad",
    infer=_max_pool_grad_infer,
    ref=_max_pool_grad_ref,
    lower=_max_pool_grad_lower,
    grad=lambda h, g, x, out, **attrs: (O.max_pool2d_select(h, x, **attrs), None),
    fusion=ANCHOR,
    attrs=dict(_MAX_POOL_ATTRS),
    samples=lambda rng: _max_pool_backward_samples(rng, grad_first=True),
    doc="Gradient of max_pool2d: g routed to each window's first max in x.",
)

max_pool2d_select = defop(
    "max_pool2d_select",
    infer=_max_pool_select_infer,
    ref=_max_pool_select_ref,
    lower=_max_pool_select_lower,
    grad=lambda g, h, x, out, **attrs: (O.max_pool2d_grad(g, x, **attrs), None),
    fusion=ANCHOR,
    attrs=dict(_MAX_POOL_ATTRS),
    samples=lambda rng: _max_pool_backward_samples(rng, grad_first=False),
    doc="h read at each pooling window's first max in x (the adjoint of max_pool2d_grad, for double backward).",
)

# ---------------------------------------------------------------------------------------
# avg_pool2d and its backward op
# ---------------------------------------------------------------------------------------

_AVG_POOL_ATTRS = {"kernel": REQUIRED, "stride": None, "pad": (0, 0, 0, 0), "ceil_mode": False, "count_include_pad": True}


def _avg_window(x_shape, kernel, stride, pad, ceil_mode, count_include_pad):
    check_infer(isinstance(count_include_pad, bool), f"count_include_pad must be a bool, got {count_include_pad!r}")
    return _pool_window(x_shape, kernel, stride, pad, (1, 1), ceil_mode)


def _avg_pool_infer(x: TensorType, **attrs):
    _check_nchw(x)
    check_infer(dtypes.is_float(x.dtype), f"needs a float tensor, got {x.dtype}")
    return _pooled(x, *_avg_window(x.shape, **attrs))


def _avg_pool_grad_infer(g: TensorType, input_shape, **attrs):
    _check_shape_attr("input_shape", input_shape)
    pooled = _avg_pool_infer(TensorType(g.dtype, input_shape), **attrs)
    check_infer(g.shape == pooled.shape, f"gradient is {list(g.shape)} but pooling a {list(input_shape)} input gives {list(pooled.shape)}")
    return TensorType(g.dtype, input_shape)


def _np_avg_counts(ah: _Axis, aw: _Axis, include_pad: bool) -> np.ndarray:
    """[OH, OW] divisors."""
    ch = ah.count(np.arange(ah.out), include_pad, np.minimum, np.maximum)
    cw = aw.count(np.arange(aw.out), include_pad, np.minimum, np.maximum)
    return np.outer(ch, cw)


def _avg_pool_ref(x, **attrs):
    ah, aw = _avg_window(x.shape, **attrs)
    total = _np_windows(x.astype(np.float64), ah, aw).sum(axis=(4, 5))
    return (total / _np_avg_counts(ah, aw, attrs["count_include_pad"])).astype(x.dtype)


def _avg_pool_grad_ref(g, input_shape, **attrs):
    ah, aw = _avg_window(input_shape, **attrs)
    per_window = g.astype(np.float64) / _np_avg_counts(ah, aw, attrs["count_include_pad"])
    win = np.broadcast_to(per_window[..., None, None], (*g.shape, ah.k, aw.k))
    return _np_unwindow(win, ah, aw).astype(g.dtype)


def _te_avg_divide(t, ah: _Axis, aw: _Axis, include_pad: bool, name: str):
    def count(i, j):
        return ah.count(i, include_pad, tir.min, tir.max) * aw.count(j, include_pad, tir.min, tir.max)

    return _te_divide(t, count, name)


def _avg_pool_lower(x, **attrs):
    ah, aw = _avg_window(_shape(x), **attrs)
    total = _te_window_fold(_te_pad(x, ah, aw, tir.const(0, str(x.dtype))), ah, aw, lambda a, b: a + b, name="pool_sum")
    return _te_avg_divide(total, ah, aw, attrs["count_include_pad"], name="avg_pool2d")


def _avg_pool_grad_lower(g, input_shape, **attrs):
    ah, aw = _avg_window(input_shape, **attrs)
    per_window = _te_avg_divide(g, ah, aw, attrs["count_include_pad"], name="per_window")
    return _te_unwindow(input_shape, str(g.dtype), ah, aw, lambda n, c, oh, ow, rh, rw: per_window[n, c, oh, ow], name="avg_pool2d_grad")


_AVG_POOL_CASES = [  # (x shape, attrs, note)
    ((2, 3, 8, 8), {"kernel": (2, 2)}, "2x2/2"),
    ((1, 4, 9, 9), {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1, 1, 1)}, "3x3/2 pad 1"),
    ((1, 4, 9, 9), {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1, 1, 1), "count_include_pad": False}, "pad not counted"),
    ((1, 2, 8, 8), {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1, 1, 1), "ceil_mode": True}, "ceil_mode pad counted"),
    ((1, 2, 7, 7), {"kernel": (2, 2), "ceil_mode": True, "count_include_pad": False}, "ceil_mode pad not counted"),
    ((1, 2, 6, 7), {"kernel": (2, 3), "stride": (1, 2), "pad": (0, 1, 1, 0)}, "asymmetric"),
]

avg_pool2d = defop(
    "avg_pool2d",
    infer=_avg_pool_infer,
    ref=_avg_pool_ref,
    lower=_avg_pool_lower,
    grad=lambda g, x, out, **attrs: (O.avg_pool2d_grad(g, input_shape=tuple(x.shape), **attrs),),
    fusion=ANCHOR,
    attrs=dict(_AVG_POOL_ATTRS),
    samples=lambda rng: [Sample((rand(rng, *xs),), a, note) for xs, a, note in _AVG_POOL_CASES],
    doc="Average pooling (PyTorch semantics, including the divisor rules of ceil_mode and count_include_pad).",
)


def _avg_pool_grad_samples(rng):
    out = []
    for xs, a, note in _AVG_POOL_CASES:
        pooled = _avg_pool_infer(TensorType("f32", xs), **{**_AVG_POOL_ATTRS, **a}).shape
        out.append(Sample((rand(rng, *pooled),), {**a, "input_shape": xs}, note))
    return out


avg_pool2d_grad = defop(
    "avg_pool2d_grad",
    infer=_avg_pool_grad_infer,
    ref=_avg_pool_grad_ref,
    lower=_avg_pool_grad_lower,
    # avg_pool2d is linear: avg_pool2d_grad is its adjoint, and the adjoint of that is avg_pool2d
    grad=lambda h, g, out, input_shape, **attrs: (O.avg_pool2d(h, **attrs),),
    fusion=ANCHOR,
    attrs={**_AVG_POOL_ATTRS, "input_shape": REQUIRED},
    samples=_avg_pool_grad_samples,
    doc="Gradient of avg_pool2d: each window's g / divisor spread over the window.",
)

# ---------------------------------------------------------------------------------------
# adaptive_avg_pool2d
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Adaptive:
    """One axis of adaptive pooling: window i covers [floor(i*size/out), ceil((i+1)*size/out))."""

    size: int
    out: int

    def start(self, i):  # ints, numpy arrays or TIR expressions
        return i * self.size // self.out

    def length(self, i):
        return ((i + 1) * self.size + self.out - 1) // self.out - self.start(i)

    @property
    def longest(self) -> int:
        return int(self.length(np.arange(self.out)).max())

    def matrix(self) -> np.ndarray:
        """[out, size] float64 averaging weights: pooled = P_h @ x @ P_w^T per channel."""
        i, pos = np.arange(self.out)[:, None], np.arange(self.size)[None, :]
        inside = (pos >= self.start(i)) & (pos < self.start(i) + self.length(i))
        return inside / self.length(i)


def _adaptive_axes(x_shape, output_size) -> tuple[_Adaptive, _Adaptive]:
    _check_ints("output_size", output_size, 2, 1)
    return _Adaptive(int(x_shape[2]), output_size[0]), _Adaptive(int(x_shape[3]), output_size[1])


def _adaptive_infer(x: TensorType, output_size):
    _check_nchw(x)
    check_infer(dtypes.is_float(x.dtype), f"needs a float tensor, got {x.dtype}")
    check_infer(x.shape[2] >= 1 and x.shape[3] >= 1, f"needs a non-empty input, got {list(x.shape)}")
    _adaptive_axes(x.shape, output_size)
    return x.with_shape((*x.shape[:2], *output_size))


def _adaptive_ref(x, output_size):
    ah, aw = _adaptive_axes(x.shape, output_size)
    return np.einsum("ih,nchw,jw->ncij", ah.matrix(), x.astype(np.float64), aw.matrix()).astype(x.dtype)


def _adaptive_lower(x, output_size):
    ah, aw = _adaptive_axes(_shape(x), output_size)
    rh, rw = te.reduce_axis((0, ah.longest), name="rh"), te.reduce_axis((0, aw.longest), name="rw")
    zero = tir.const(0, str(x.dtype))

    def element(n, c, i, j):  # windows have different lengths: sum the longest, masked (reads clamped in bounds)
        y, z = tir.min(ah.start(i) + rh, ah.size - 1), tir.min(aw.start(j) + rw, aw.size - 1)
        inside = tir.all(rh < ah.length(i), rw < aw.length(j))
        return te.sum(tir.if_then_else(inside, x[n, c, y, z], zero), axis=[rh, rw])

    total = te.compute((*_shape(x)[:2], ah.out, aw.out), element, name="pool_sum")
    return _te_divide(total, lambda i, j: ah.length(i) * aw.length(j), name="adaptive_avg_pool2d")


def _adaptive_grad(g, x, out, output_size):
    (h, w), (oh, ow) = x.shape[2:], output_size
    if h % oh == 0 and w % ow == 0:  # equal, disjoint windows: an ordinary average pool
        k = (h // oh, w // ow)
        return (O.avg_pool2d_grad(g, kernel=k, stride=k, input_shape=tuple(x.shape)),)
    # overlapping windows: pooled = P_h @ x @ P_w^T per channel, so dx = P_h^T @ g @ P_w
    ah, aw = _adaptive_axes(x.shape, output_size)
    np_dtype = dtypes.to_numpy(g.dtype)
    return (O.matmul(O.matmul(ah.matrix().T.astype(np_dtype), g), aw.matrix().astype(np_dtype)),)


adaptive_avg_pool2d = defop(
    "adaptive_avg_pool2d",
    infer=_adaptive_infer,
    ref=_adaptive_ref,
    lower=_adaptive_lower,
    grad=_adaptive_grad,
    fusion=ANCHOR,
    attrs={"output_size": REQUIRED},
    samples=lambda rng: [
        Sample((rand(rng, 2, 3, 7, 7),), {"output_size": (1, 1)}, "global"),
        Sample((rand(rng, 1, 4, 8, 6),), {"output_size": (2, 3)}, "divisible"),
        Sample((rand(rng, 1, 3, 7, 9),), {"output_size": (3, 4)}, "overlapping windows"),
        Sample((rand(rng, 1, 2, 5, 4),), {"output_size": (7, 6)}, "output larger than input"),
    ],
    doc="Average pooling to a fixed output size (PyTorch's window bounds); (1, 1) is global average pooling.",
)

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

    return te.compute(_shape(x), element, name="batch_norm")


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
