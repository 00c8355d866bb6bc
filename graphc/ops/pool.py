"""Pooling ops (max, average, adaptive average; NCHW) and their backward ops.

* ``max_pool2d_grad(g, x)`` routes g to each window's first max in x, and its
  adjoint ``max_pool2d_select(h, x)`` reads h at each window's first max in x;
* ``max_pool2d_with_index(x)`` also returns where each window's first max is (its tap
  ``kh * KW + kw``, like torch's max_pool2d_with_indices but window-relative), so the
  backward ``max_pool2d_index_grad(g, index)`` needs neither x nor anything else at full
  resolution (its adjoint is ``max_pool2d_index_select(h, index)``);
* ``avg_pool2d_grad(g)`` spreads g back over each window.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import dtypes
from ..ir import TensorType, check_infer
from . import window as W
from ._lazy import ops as O
from ._lazy import te, tir
from .registry import ANCHOR, REQUIRED, Sample, defop, rand
from .te_util import te_shape

# ---------------------------------------------------------------------------------------
# max_pool2d, its backward op and that op's adjoint
# ---------------------------------------------------------------------------------------

_MAX_POOL_ATTRS = {"kernel": REQUIRED, "stride": None, "pad": (0, 0, 0, 0), "dilation": (1, 1), "ceil_mode": False}


def _max_pool_infer(x: TensorType, **attrs):
    W.check_nchw(x)
    check_infer(x.dtype != "bool", "needs a numeric tensor, got bool")
    return W.pooled(x, *W.pool_window(x.shape, **attrs))


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
    ah, aw = W.pool_window(x.shape, **attrs)
    return W.np_windows(x, ah, aw, W.np_lowest(x.dtype)).max(axis=(4, 5))


# Routing by window taps (flat kh * KW + kw of each window's first max), shared by the ops that
# find the taps from x (max_pool2d_grad/_select) and those given them (max_pool2d_index_grad/_select).


def _np_route(g, tap, ah: W.Axis, aw: W.Axis):
    """Each window's g added onto the input position its tap reads."""
    onehot = tap[..., None] == np.arange(ah.k * aw.k)
    win = (onehot * g.astype(np.float64)[..., None]).reshape(*g.shape, ah.k, aw.k)
    return W.np_unwindow(win, ah, aw).astype(g.dtype)


def _np_gather(h, tap, ah: W.Axis, aw: W.Axis):
    """h read at each window's tap (0 where the tap is padding)."""
    win = W.np_windows(h, ah, aw)
    return np.take_along_axis(win.reshape(*tap.shape, -1), tap.astype(np.intp)[..., None], -1)[..., 0]


def _te_route(g, tap, input_shape, ah: W.Axis, aw: W.Axis, name: str):
    zero = tir.const(0, str(g.dtype))

    def value(n, c, oh, ow, rh, rw):
        return tir.Select(tap[n, c, oh, ow] == rh * aw.k + rw, g[n, c, oh, ow], zero)

    return W.te_unwindow(input_shape, str(g.dtype), ah, aw, value, name=name)


def _te_gather(h, tap, ah: W.Axis, aw: W.Axis, name: str):
    def element(n, c, i, j):
        t = tap[n, c, i, j]
        y, z = ah.at(i, t // aw.k) - ah.lo, aw.at(j, t % aw.k) - aw.lo
        inside = tir.all(y >= 0, y < ah.size, z >= 0, z < aw.size)  # (padding wins only if the input is -inf there)
        return tir.if_then_else(inside, h[n, c, y, z], tir.const(0, str(h.dtype)))

    return te.compute(te_shape(tap), element, name=name)


def _max_pool_grad_ref(g, x, **attrs):
    ah, aw = W.pool_window(x.shape, **attrs)
    return _np_route(g, W.np_window_argmax(x, ah, aw), ah, aw)


def _max_pool_select_ref(h, x, **attrs):
    ah, aw = W.pool_window(x.shape, **attrs)
    return _np_gather(h, W.np_window_argmax(x, ah, aw), ah, aw)


def _max_pool_lower(x, **attrs):
    ah, aw = W.pool_window(te_shape(x), **attrs)
    return W.te_window_fold(W.te_pad(x, ah, aw, W.lowest(str(x.dtype))), ah, aw, tir.max, name="max_pool2d")


def _max_pool_grad_lower(g, x, **attrs):
    ah, aw = W.pool_window(te_shape(x), **attrs)
    return _te_route(g, W.te_window_argmax(x, ah, aw), te_shape(x), ah, aw, name="max_pool2d_grad")


def _max_pool_select_lower(h, x, **attrs):
    ah, aw = W.pool_window(te_shape(x), **attrs)
    return _te_gather(h, W.te_window_argmax(x, ah, aw), ah, aw, name="max_pool2d_select")


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
# max_pool2d_with_index: the pooled value and its tap, so the backward reads pooled-size
# tensors only (training fuses conv -> bias -> relu -> this into one kernel:
# graphc.passes.index_max_pool)
# ---------------------------------------------------------------------------------------

INDEX_DTYPE = "i32"


def _with_index_infer(x: TensorType, **attrs):
    pooled = _max_pool_infer(x, **attrs)
    return pooled, pooled.with_dtype(INDEX_DTYPE)


def _check_index(index: TensorType, input_shape, attrs) -> TensorType:
    """The pooled type a pooling of `input_shape` gives; `index` must be its i32 taps."""
    check_infer(index.dtype == INDEX_DTYPE, f"the window index must be {INDEX_DTYPE}, got {index.dtype}")
    W.check_shape_attr("input_shape", input_shape)
    pooled = W.pooled(TensorType("f32", input_shape), *W.pool_window(input_shape, **attrs))
    check_infer(index.shape == pooled.shape, f"index is {list(index.shape)} but pooling a {list(input_shape)} input gives {list(pooled.shape)}")
    return pooled


def _index_grad_infer(g: TensorType, index: TensorType, input_shape, **attrs):
    pooled = _check_index(index, input_shape, attrs)
    check_infer(dtypes.is_float(g.dtype) and g.shape == pooled.shape, f"needs a float gradient of the index's shape, got {g}")
    return TensorType(g.dtype, input_shape)


def _index_select_infer(h: TensorType, index: TensorType, **attrs):
    check_infer(dtypes.is_float(h.dtype), f"needs a float tensor, got {h.dtype}")
    return _check_index(index, tuple(h.shape), attrs).with_dtype(h.dtype)


def _with_index_ref(x, **attrs):
    ah, aw = W.pool_window(x.shape, **attrs)
    return _max_pool_ref(x, **attrs), W.np_window_argmax(x, ah, aw).astype(np.int32)


def _with_index_lower(x, **attrs):
    # two spatial stages (not an argmax reduction, nor one two-output compute, which TIR
    # cannot merge into one loop nest) that a fused conv's schedule runs in one loop nest
    ah, aw = W.pool_window(te_shape(x), **attrs)
    xp = W.te_pad(x, ah, aw, W.lowest(str(x.dtype)))
    pooled = W.te_window_fold(xp, ah, aw, tir.max, name="max_pool2d")

    def index(n, c, i, j):  # the first tap equal to the max: selects chained from the last tap back
        taps = [xp[n, c, ah.at(i, r), aw.at(j, q)] for r in range(ah.k) for q in range(aw.k)]
        out = tir.const(len(taps) - 1, "int32")
        for t in range(len(taps) - 2, -1, -1):
            out = tir.Select(taps[t] == pooled[n, c, i, j], tir.const(t, "int32"), out)
        return out

    return pooled, te.compute(te_shape(pooled), index, name="max_pool2d_index")


def _index_samples(rng, op: str):
    """(x,) for max_pool2d_with_index, (g, index) / (h, index) for its backward ops; one case has
    tied maxima (all-zero windows, as after a relu), where the first max must win."""
    out = []
    for xs, a, note in _MAX_POOL_CASES + [((1, 3, 6, 6), {"kernel": (3, 3), "stride": (1, 1)}, "ties")]:
        x = np.maximum(rng.integers(-2, 3, size=xs), 0).astype(np.float32) if note == "ties" else rand(rng, *xs)
        if op == "forward":  # ties: the value's gradient is not differentiable there
            out.append(Sample((x,), a, note, no_grad_check=(0,) if note == "ties" else ()))
            continue
        pooled, index = _with_index_ref(x, **{**_MAX_POOL_ATTRS, **a})
        if op == "grad":
            out.append(Sample((rand(rng, *pooled.shape), index), {**a, "input_shape": xs}, note))
        else:
            out.append(Sample((rand(rng, *xs), index), a, note))
    return out


max_pool2d_with_index = defop(
    "max_pool2d_with_index",
    infer=_with_index_infer,
    ref=_with_index_ref,
    lower=_with_index_lower,
    grad=lambda g, x, out, **attrs: (O.max_pool2d_index_grad(g[0], out[1], input_shape=tuple(x.shape), **attrs),),
    fusion=ANCHOR,
    attrs=dict(_MAX_POOL_ATTRS),
    samples=lambda rng: _index_samples(rng, "forward"),
    doc="max_pool2d, and each window's first max as its flat tap kh * KW + kw (i32).",
)

max_pool2d_index_grad = defop(
    "max_pool2d_index_grad",
    infer=_index_grad_infer,
    ref=lambda g, index, input_shape, **attrs: _np_route(g, index, *W.pool_window(input_shape, **attrs)),
    lower=lambda g, index, input_shape, **attrs: _te_route(
        g, index, input_shape, *W.pool_window(input_shape, **attrs), name="max_pool2d_index_grad"
    ),
    # linear in g: the adjoint reads h back at the same taps
    grad=lambda h, g, index, out, input_shape, **attrs: (O.max_pool2d_index_select(h, index, **attrs), None),
    fusion=ANCHOR,
    attrs={**_MAX_POOL_ATTRS, "input_shape": REQUIRED},
    samples=lambda rng: _index_samples(rng, "grad"),
    doc="Gradient of max_pool2d_with_index: each window's g added at its tap (the index), zeros elsewhere.",
)

max_pool2d_index_select = defop(
    "max_pool2d_index_select",
    infer=_index_select_infer,
    ref=lambda h, index, **attrs: _np_gather(h, index, *W.pool_window(h.shape, **attrs)),
    lower=lambda h, index, **attrs: _te_gather(h, index, *W.pool_window(te_shape(h), **attrs), name="max_pool2d_index_select"),
    grad=lambda g, h, index, out, **attrs: (O.max_pool2d_index_grad(g, index, input_shape=tuple(h.shape), **attrs), None),
    fusion=ANCHOR,
    attrs=dict(_MAX_POOL_ATTRS),
    samples=lambda rng: _index_samples(rng, "select"),
    doc="h read at each window's tap given by the index (the adjoint of max_pool2d_index_grad).",
)

# ---------------------------------------------------------------------------------------
# avg_pool2d and its backward op
# ---------------------------------------------------------------------------------------

_AVG_POOL_ATTRS = {"kernel": REQUIRED, "stride": None, "pad": (0, 0, 0, 0), "ceil_mode": False, "count_include_pad": True}


def _avg_window(x_shape, kernel, stride, pad, ceil_mode, count_include_pad):
    check_infer(isinstance(count_include_pad, bool), f"count_include_pad must be a bool, got {count_include_pad!r}")
    return W.pool_window(x_shape, kernel, stride, pad, (1, 1), ceil_mode)


def _avg_pool_infer(x: TensorType, **attrs):
    W.check_nchw(x)
    check_infer(dtypes.is_float(x.dtype), f"needs a float tensor, got {x.dtype}")
    return W.pooled(x, *_avg_window(x.shape, **attrs))


def _avg_pool_grad_infer(g: TensorType, input_shape, **attrs):
    W.check_shape_attr("input_shape", input_shape)
    pooled = _avg_pool_infer(TensorType(g.dtype, input_shape), **attrs)
    check_infer(g.shape == pooled.shape, f"gradient is {list(g.shape)} but pooling a {list(input_shape)} input gives {list(pooled.shape)}")
    return TensorType(g.dtype, input_shape)


def _np_avg_counts(ah: W.Axis, aw: W.Axis, include_pad: bool) -> np.ndarray:
    """[OH, OW] divisors."""
    ch = ah.count(np.arange(ah.out), include_pad, np.minimum, np.maximum)
    cw = aw.count(np.arange(aw.out), include_pad, np.minimum, np.maximum)
    return np.outer(ch, cw)


def _avg_pool_ref(x, **attrs):
    ah, aw = _avg_window(x.shape, **attrs)
    total = W.np_windows(x.astype(np.float64), ah, aw).sum(axis=(4, 5))
    return (total / _np_avg_counts(ah, aw, attrs["count_include_pad"])).astype(x.dtype)


def _avg_pool_grad_ref(g, input_shape, **attrs):
    ah, aw = _avg_window(input_shape, **attrs)
    per_window = g.astype(np.float64) / _np_avg_counts(ah, aw, attrs["count_include_pad"])
    win = np.broadcast_to(per_window[..., None, None], (*g.shape, ah.k, aw.k))
    return W.np_unwindow(win, ah, aw).astype(g.dtype)


def _te_avg_divide(t, ah: W.Axis, aw: W.Axis, include_pad: bool, name: str):
    def count(i, j):
        return ah.count(i, include_pad, tir.min, tir.max) * aw.count(j, include_pad, tir.min, tir.max)

    return W.te_divide(t, count, name)


def _avg_pool_lower(x, **attrs):
    ah, aw = _avg_window(te_shape(x), **attrs)
    total = W.te_window_fold(W.te_pad(x, ah, aw, tir.const(0, str(x.dtype))), ah, aw, lambda a, b: a + b, name="pool_sum")
    return _te_avg_divide(total, ah, aw, attrs["count_include_pad"], name="avg_pool2d")


def _avg_pool_grad_lower(g, input_shape, **attrs):
    ah, aw = _avg_window(input_shape, **attrs)
    per_window = _te_avg_divide(g, ah, aw, attrs["count_include_pad"], name="per_window")
    return W.te_unwindow(input_shape, str(g.dtype), ah, aw, lambda n, c, oh, ow, rh, rw: per_window[n, c, oh, ow], name="avg_pool2d_grad")


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
    W.check_ints("output_size", output_size, 2, 1)
    return _Adaptive(int(x_shape[2]), output_size[0]), _Adaptive(int(x_shape[3]), output_size[1])


def _adaptive_infer(x: TensorType, output_size):
    W.check_nchw(x)
    check_infer(dtypes.is_float(x.dtype), f"needs a float tensor, got {x.dtype}")
    check_infer(x.shape[2] >= 1 and x.shape[3] >= 1, f"needs a non-empty input, got {list(x.shape)}")
    _adaptive_axes(x.shape, output_size)
    return x.with_shape((*x.shape[:2], *output_size))


def _adaptive_ref(x, output_size):
    ah, aw = _adaptive_axes(x.shape, output_size)
    return np.einsum("ih,nchw,jw->ncij", ah.matrix(), x.astype(np.float64), aw.matrix()).astype(x.dtype)


def _adaptive_lower(x, output_size):
    ah, aw = _adaptive_axes(te_shape(x), output_size)
    rh, rw = te.reduce_axis((0, ah.longest), name="rh"), te.reduce_axis((0, aw.longest), name="rw")
    zero = tir.const(0, str(x.dtype))

    def element(n, c, i, j):  # windows have different lengths: sum the longest, masked (reads clamped in bounds)
        y, z = tir.min(ah.start(i) + rh, ah.size - 1), tir.min(aw.start(j) + rw, aw.size - 1)
        inside = tir.all(rh < ah.length(i), rw < aw.length(j))
        return te.sum(tir.if_then_else(inside, x[n, c, y, z], zero), axis=[rh, rw])

    total = te.compute((*te_shape(x)[:2], ah.out, aw.out), element, name="pool_sum")
    return W.te_divide(total, lambda i, j: ah.length(i) * aw.length(j), name="adaptive_avg_pool2d")


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
