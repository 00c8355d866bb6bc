"""Sliding-window geometry and helpers shared by convolution and pooling ops.

`Axis` is one spatial axis of a window sweep (input length, kernel taps, stride,
padding, dilation, PyTorch's output-length rules). It gives the numpy references
their window indices and the TE lowerings their index arithmetic, both forward
(which input a window tap reads) and backward (which window reads an input at a
given tap). Padding is always (top, left, bottom, right).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import TensorType, check_infer
from ._lazy import te, tir
from .te_util import te_shape

# block annotations read by the schedule rules (graphc.codegen.schedule.common; not imported:
# op records must import without the TVM compiler)
RULE = "graphc_rule"  # which anchor schedule rule fits this stage
KEEP = "graphc_keep"  # materialize this stage (padding) instead of inlining it into its consumer

# ---------------------------------------------------------------------------------------
# window geometry (shared by conv, pools and their backward ops)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
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


def check_ints(name: str, v, n: int, low: int) -> None:
    ok = isinstance(v, tuple) and len(v) == n and all(isinstance(e, int) and not isinstance(e, bool) and e >= low for e in v)
    check_infer(ok, f"{name} must be a tuple of {n} ints >= {low}, got {v!r}")


def window(hw, kernel, stride, pad, dilation=(1, 1), ceil_mode=False) -> tuple[Axis, Axis]:
    """Validated (H axis, W axis) of a window sweep over an input of spatial size hw."""
    for name, v, n, low in (("kernel", kernel, 2, 1), ("stride", stride, 2, 1), ("pad", pad, 4, 0), ("dilation", dilation, 2, 1)):
        check_ints(name, v, n, low)
    check_infer(isinstance(ceil_mode, bool), f"ceil_mode must be a bool, got {ceil_mode!r}")
    ah = Axis(int(hw[0]), kernel[0], stride[0], pad[0], pad[2], dilation[0], ceil_mode)
    aw = Axis(int(hw[1]), kernel[1], stride[1], pad[1], pad[3], dilation[1], ceil_mode)
    check_infer(
        ah.out >= 1 and aw.out >= 1,
        f"the {kernel[0]}x{kernel[1]} kernel (dilation {dilation}) does not fit the {hw[0]}x{hw[1]} input padded by {pad}",
    )
    return ah, aw


def pool_window(x_shape, kernel, stride, pad, dilation=(1, 1), ceil_mode=False) -> tuple[Axis, Axis]:
    """Pools: stride None means the kernel; padding at most half the window, as PyTorch requires
    (so no window lies entirely in the padding)."""
    check_ints("kernel", kernel, 2, 1)
    ah, aw = window(x_shape[2:], kernel, kernel if stride is None else stride, pad, dilation, ceil_mode)
    for ax in (ah, aw):
        check_infer(max(ax.lo, ax.hi) <= ax.extent // 2, f"padding {pad} is more than half of the {kernel} window (dilation {dilation})")
    return ah, aw


def check_nchw(x: TensorType) -> None:
    check_infer(x.rank == 4, f"input must be NCHW (rank 4), got {list(x.shape)}")


def check_shape_attr(name: str, shape) -> None:
    check_ints(name, shape, 4, 0)


def pooled(x: TensorType, ah: Axis, aw: Axis) -> TensorType:
    return x.with_shape((*x.shape[:2], ah.out, aw.out))


# -- numpy: windows as fancy-index views (vectorized im2col) ----------------------------


def np_lowest(dtype: np.dtype):
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def np_pad(x: np.ndarray, ah: Axis, aw: Axis, fill) -> np.ndarray:
    out = np.full((*x.shape[:2], ah.padded, aw.padded), fill, dtype=x.dtype)
    out[:, :, ah.lo : ah.lo + ah.size, aw.lo : aw.lo + aw.size] = x
    return out


def window_index(ah: Axis, aw: Axis) -> tuple:
    """Index of a padded [N, C, PH, PW] array giving [N, C, OH, OW, KH, KW] windows."""
    return (slice(None), slice(None), ah.taps()[:, None, :, None], aw.taps()[None, :, None, :])


def np_windows(x: np.ndarray, ah: Axis, aw: Axis, fill=0) -> np.ndarray:
    """[N, C, OH, OW, KH, KW]: every window of x padded with `fill`."""
    return np_pad(x, ah, aw, fill)[window_index(ah, aw)]


def np_unwindow(win: np.ndarray, ah: Axis, aw: Axis) -> np.ndarray:
    """Adjoint of np_windows: add [N, C, OH, OW, KH, KW] window elements back onto the unpadded input."""
    out = np.zeros((*win.shape[:2], ah.padded, aw.padded), win.dtype)
    np.add.at(out, window_index(ah, aw), win)
    return out[:, :, ah.lo : ah.lo + ah.size, aw.lo : aw.lo + aw.size]


def np_window_argmax(x: np.ndarray, ah: Axis, aw: Axis) -> np.ndarray:
    """[N, C, OH, OW]: flat tap index (kh * KW + kw) of each window's first max."""
    win = np_windows(x, ah, aw, np_lowest(x.dtype))
    return win.reshape(*win.shape[:4], -1).argmax(-1)


# -- TE ---------------------------------------------------------------------------------



def lowest(dtype: str):
    """TE fill for max pooling's padding: -inf for floats, the minimum for ints."""
    return tir.const(float("-inf"), dtype) if "float" in dtype else tir.min_value(dtype)


def te_pad(x, ah: Axis, aw: Axis, fill, keep: bool = False):
    """x padded to [N, C, ah.padded, aw.padded] with `fill` (x itself when nothing needs padding)."""
    if ah.lo == aw.lo == 0 and (ah.padded, aw.padded) == (ah.size, aw.size):
        return x
    n, c = te_shape(x)[:2]

    def element(b, ch, y, z):
        iy, iz = y - ah.lo, z - aw.lo
        return tir.if_then_else(tir.all(iy >= 0, iy < ah.size, iz >= 0, iz < aw.size), x[b, ch, iy, iz], fill)

    return te.compute((n, c, ah.padded, aw.padded), element, name="pad", attrs={KEEP: 1} if keep else None)


def tap_axes(ah: Axis, aw: Axis):
    """Reduce axes over a window's taps."""
    return te.reduce_axis((0, ah.k), name="rh"), te.reduce_axis((0, aw.k), name="rw")


def tree(combine, vals: list):
    """combine(...) over vals as a balanced expression tree (shallow, and pairwise for sums)."""
    if len(vals) == 1:
        return vals[0]
    half = len(vals) // 2
    return combine(tree(combine, vals[:half]), tree(combine, vals[half:]))


# Window ops below unroll their taps into one expression per element instead of using a
# reduce axis: pooling windows are small, and a spatial stage (unlike a reduction) gets
# vectorized along the innermost axis by the generic CPU schedule.


def te_window_fold(xp, ah: Axis, aw: Axis, combine, name: str):
    """[N, C, OH, OW]: combine (max, add) over each window of the padded input xp."""

    def element(n, c, i, j):
        return tree(combine, [xp[n, c, ah.at(i, r), aw.at(j, q)] for r in range(ah.k) for q in range(aw.k)])

    return te.compute((*te_shape(xp)[:2], ah.out, aw.out), element, name=name)


def te_unwindow(shape, dtype: str, ah: Axis, aw: Axis, value, name: str):
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
        return tree(lambda a, b: a + b, terms)

    return te.compute(tuple(shape), element, name=name)


def te_divide(t, count, name: str):
    """t[n, c, i, j] / count(i, j) (an integer expression), in t's dtype."""
    dtype = str(t.dtype)
    return te.compute(te_shape(t), lambda n, c, i, j: t[n, c, i, j] / tir.Cast(dtype, count(i, j)), name=name)


def argmax_combine(a, b):
    """(tap, value) pairs: the larger value wins, the smaller tap on ties. Commutative, so every
    reduction order gives PyTorch's first max."""
    take = tir.any(b[1] > a[1], tir.all(b[1] == a[1], b[0] < a[0]))
    return tir.Select(take, b[0], a[0]), tir.Select(take, b[1], a[1])


def argmax_identity(tap_dtype, value_dtype):
    return tir.const(2**31 - 1, tap_dtype), lowest(str(value_dtype))


def te_window_argmax(x, ah: Axis, aw: Axis):
    """int32 [N, C, OH, OW]: flat tap index (kh * KW + kw) of each window's first max.
    (A reduction: unrolled, each (tap, value) combine would repeat its operands' expressions.)"""
    xp = te_pad(x, ah, aw, lowest(str(x.dtype)))
    rh, rw = tap_axes(ah, aw)
    argmax = te.comm_reducer(argmax_combine, argmax_identity, name="argmax")
    tap, _ = te.compute(
        (*te_shape(x)[:2], ah.out, aw.out),
        lambda n, c, i, j: argmax((rh * aw.k + rw, xp[n, c, ah.at(i, rh), aw.at(j, rw)]), axis=[rh, rw]),
        name="window_argmax",
    )
    return tap
