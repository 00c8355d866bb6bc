"""Signal processing ONNX ops: DFT and STFT as matmuls with constant cosine / sine matrices
(shapes are static, so the transform is a fixed linear map), and the window functions
and MelWeightMatrix, which are constants.

ONNX stores complex tensors as a trailing axis of size 2 (real, imaginary); a real
signal has a trailing axis of size 1. The matrices are computed in float64 and the
products run in float64 too, then round to the input's dtype once.
"""
from __future__ import annotations

import math

import numpy as np

from ... import dtypes
from ...tensor import Tensor
from ..onnx import NodeContext, converter, graphc_dtype
from ._common import norm_axis


def _scalar_int(ctx: NodeContext, i: int, what: str) -> int:
    values = ctx.ints(i, what)
    if len(values) != 1:
        raise ctx.error(f"input {i} ({what}) must hold one value, got {values}")
    return values[0]


def _output_dtype(ctx: NodeContext, default: int = 1) -> str:
    code = int(ctx.attr("output_datatype", default))
    return graphc_dtype(code, f"{ctx.importer.where}: {ctx.describe()}: attribute 'output_datatype'")


# ---------------------------------------------------------------------------------------
# the transform
# ---------------------------------------------------------------------------------------
def _part(ctx: NodeContext, x: Tensor, k: int) -> Tensor:
    """Real (k=0) or imaginary (k=1) part: the trailing axis sliced away."""
    last = x.ndim - 1
    return ctx.op("squeeze", ctx.op("slice", x, starts=(k,), ends=(k + 1,), axes=(last,)), axes=(last,))


def _dft_matrices(n_in: int, length: int, n_out: int, inverse: bool, half_spectrum: bool):
    """[n_in, n_out] matrices (from the real part, from the imaginary part) to the (real, imaginary)
    outputs, as float64: y_re = x_re @ a + x_im @ b, y_im = x_im @ a - x_re @ b (forward; the
    inverse flips the sign of b and divides by length). Inputs past `length` are cut off; an
    input shorter than `length` is zero-padded (it simply has fewer rows).

    With `half_spectrum` (an inverse from one-sided bins, numpy's irfft) the output is real:
    y = x_re @ a + x_im @ b, each bin k in 1..ceil(length/2)-1 standing for itself and its
    mirror image."""
    rows = min(n_in, length)
    k = np.arange(rows, dtype=np.float64)[:, None]
    n = np.arange(n_out, dtype=np.float64)[None, :]
    angle = 2.0 * np.pi * np.mod(k * n, length) / length  # reduced mod length: exact angles
    cos, sin = np.cos(angle), np.sin(angle)
    if half_spectrum:
        weight = np.full((rows, 1), 2.0)
        weight[0] = 1.0
        if length % 2 == 0 and length // 2 < rows:
            weight[length // 2] = 1.0
        weight[length // 2 + 1 :] = 0.0  # bins past the middle are ignored, as numpy does
        return weight * cos / length, -weight * sin / length
    if inverse:
        return cos / length, -sin / length
    return cos, sin


def _transform(ctx: NodeContext, x: Tensor, axis: int, length: int, inverse: bool, onesided: bool) -> Tensor:
    """DFT of x (trailing axis 1 or 2) along `axis`; returns the trailing-axis-2 (or 1 for irfft) result."""
    complex_in = x.shape[-1] == 2
    if x.shape[-1] not in (1, 2):
        raise ctx.error(f"the last axis must have size 1 (real) or 2 (complex), got shape {list(x.shape)}")
    if inverse and onesided and not complex_in:
        raise ctx.error("an inverse one-sided DFT needs a complex input")
    if onesided and not inverse and complex_in:
        raise ctx.error("a one-sided DFT needs a real input")
    dtype = x.dtype
    n_in = x.shape[axis]
    half_spectrum = inverse and onesided
    n_out = length // 2 + 1 if onesided and not inverse else length
    a, b = _dft_matrices(n_in, length, n_out, inverse, half_spectrum)

    rank = x.ndim - 1  # the signal's axes, without the trailing real/imaginary one
    perm = tuple(d for d in range(rank) if d != axis) + (axis,)
    back = tuple(np.argsort(perm).tolist())

    def prepared(part: Tensor) -> Tensor:
        part = ctx.op("cast", part, dtype="f64") if dtype != "f64" else part
        part = part if perm == tuple(range(rank)) else ctx.op("transpose", part, perm=perm)
        if n_in > length:  # the signal is cut to the transform length
            part = ctx.op("slice", part, starts=(0,), ends=(length,), axes=(rank - 1,))
        return part

    def times(part: Tensor, matrix: np.ndarray) -> Tensor:
        return ctx.op("matmul", part, ctx.constant(matrix))

    re = prepared(_part(ctx, x, 0))
    im = prepared(_part(ctx, x, 1)) if complex_in else None
    out_re = times(re, a)
    if half_spectrum:
        outs = [ctx.op("add", out_re, times(im, b))]
    else:
        out_im = ctx.op("neg", times(re, b))
        if im is not None:
            out_re = ctx.op("add", out_re, times(im, b))
            out_im = ctx.op("add", out_im, times(im, a))
        outs = [out_re, out_im]

    def finished(part: Tensor) -> Tensor:
        part = part if back == tuple(range(rank)) else ctx.op("transpose", part, perm=back)
        part = ctx.op("cast", part, dtype=dtype) if dtype != "f64" else part
        return ctx.op("unsqueeze", part, axes=(rank,))

    outs = [finished(p) for p in outs]
    return outs[0] if len(outs) == 1 else ctx.op("concat", *outs, axis=rank)


@converter("DFT")
def _dft(ctx: NodeContext):
    x = ctx.input(0)
    if ctx.opset >= 20:
        axis = _scalar_int(ctx, 2, "axis") if ctx.has_input(2) else -2
    else:
        axis = int(ctx.attr("axis"))
    axis = norm_axis(ctx, axis, x.ndim)
    if axis == x.ndim - 1:
        raise ctx.error("axis must not be the last (real/imaginary) axis")
    inverse, onesided = bool(ctx.attr("inverse")), bool(ctx.attr("onesided"))
    if ctx.has_input(1):
        length = _scalar_int(ctx, 1, "dft_length")
    else:  # an inverse from one-sided bins restores an even-length signal (the reference's choice)
        length = 2 * (x.shape[axis] - 1) if inverse and onesided else x.shape[axis]
    if length < 1:
        raise ctx.error(f"dft_length must be >= 1, got {length}")
    return _transform(ctx, x, axis, length, inverse, onesided)


@converter("STFT")
def _stft(ctx: NodeContext):
    """Frames [batch, frames, frame_length, 1|2] gathered at constant positions, windowed, transformed."""
    x = ctx.input(0)
    if x.ndim != 3:
        raise ctx.error(f"signal must have shape [batch, length, 1 or 2], got {list(x.shape)}")
    step = _scalar_int(ctx, 1, "frame_step")
    window = ctx.input(2) if ctx.has_input(2) else None
    if ctx.has_input(3):
        frame = _scalar_int(ctx, 3, "frame_length")
    else:
        frame = window.shape[0] if window is not None else x.shape[1]
    if window is not None and window.shape != (frame,):
        raise ctx.error(f"window must have shape [{frame}] (the frame length), got {list(window.shape)}")
    if step < 1 or not 1 <= frame <= x.shape[1]:
        raise ctx.error(f"frame_step {step} and frame_length {frame} do not fit a signal of length {x.shape[1]}")
    frames = (x.shape[1] - frame) // step + 1
    positions = np.arange(frames)[:, None] * step + np.arange(frame)[None, :]
    framed = ctx.op("gather", x, ctx.constant(positions.astype(np.int64)), axis=1)  # [batch, frames, frame, c]
    if window is not None:
        framed = ctx.op("mul", framed, ctx.op("reshape", window, shape=(frame, 1)))
    onesided = bool(ctx.attr("onesided"))
    return _transform(ctx, framed, 2, frame, inverse=False, onesided=onesided and x.shape[-1] == 1)


# ---------------------------------------------------------------------------------------
# constants: windows and mel filter banks
# ---------------------------------------------------------------------------------------
def _window(cosine_terms: tuple[float, ...]):
    """A generalized cosine window: sum_j c_j cos(2 pi j n / D), D = size (periodic) or size - 1."""

    def convert(ctx: NodeContext):
        size = _scalar_int(ctx, 0, "size")
        if size < 0:
            raise ctx.error(f"size must be >= 0, got {size}")
        denominator = size if ctx.attr("periodic", 1) else size - 1
        n = np.arange(size, dtype=np.float64)
        phase = 2.0 * np.pi * n / denominator if denominator > 0 else np.zeros_like(n)
        values = sum(c * np.cos(j * phase) for j, c in enumerate(cosine_terms))
        return ctx.constant(np.asarray(values, dtype=np.float64).astype(dtypes.to_numpy(_output_dtype(ctx))))

    return convert


converter("HannWindow")(_window((0.5, -0.5)))
converter("HammingWindow")(_window((25.0 / 46.0, -21.0 / 46.0)))
converter("BlackmanWindow")(_window((0.42, -0.5, 0.08)))


def _mel_bins(num_mel_bins: int, dft_length: int, sample_rate: int, low_hz: float, high_hz: float) -> np.ndarray:
    """The spectrogram bin of each of the num_mel_bins + 2 triangle corners, evenly spaced on the
    mel scale (the ONNX reference's construction, step (high - low) / (num_mel_bins + 2))."""
    mel_low = 2595.0 * math.log10(1.0 + low_hz / 700.0)
    mel_high = 2595.0 * math.log10(1.0 + high_hz / 700.0)
    mel = np.arange(num_mel_bins + 2) * ((mel_high - mel_low) / (num_mel_bins + 2)) + mel_low
    hz = 700.0 * np.expm1(mel / 2595.0 * math.log(10.0))
    return (((dft_length + 1) * hz) // sample_rate).astype(np.int64)


@converter("MelWeightMatrix")
def _mel_weight_matrix(ctx: NodeContext):
    num_mel_bins = _scalar_int(ctx, 0, "num_mel_bins")
    dft_length = _scalar_int(ctx, 1, "dft_length")
    sample_rate = _scalar_int(ctx, 2, "sample_rate")
    low_hz, high_hz = (float(np.asarray(ctx.const(i, what)).reshape(-1)[0]) for i, what in ((3, "lower_edge_hertz"), (4, "upper_edge_hertz")))
    if num_mel_bins < 1 or dft_length < 1 or sample_rate < 1 or not 0 <= low_hz < high_hz:
        raise ctx.error(
            f"needs num_mel_bins, dft_length and sample_rate >= 1 and 0 <= lower < upper edge, got {num_mel_bins}, "
            f"{dft_length}, {sample_rate}, {low_hz}, {high_hz}"
        )
    corners = _mel_bins(num_mel_bins, dft_length, sample_rate, low_hz, high_hz)
    out = np.zeros((dft_length // 2 + 1, num_mel_bins))
    for i in range(num_mel_bins):  # triangles rising from corner i to i+1 (peak 1) and falling to i+2
        left, center, right = corners[i : i + 3]
        if center == left:
            out[center, i] = 1.0
        else:
            out[left : center + 1, i] = (np.arange(left, center + 1) - left) / (center - left)
        if right > center:
            out[center:right, i] = (right - np.arange(center, right)) / (right - center)
    return ctx.constant(out.astype(dtypes.to_numpy(_output_dtype(ctx))))
