"""For every differentiable graphc op: the same function written with PyTorch ops, or why there is none.

``TORCH[op](*tensors, **attrs)`` computes what the op computes (its output, or a tuple of
outputs) from torch tensors, so ``torch.autograd`` differentiates it and the op's
gradient rule can be checked against that. Where graphc follows ONNX conventions that
torch spells differently (asymmetric pads, ONNX Slice, exclusive/reverse scans...) the
function translates; backward ops are the torch vjp of their forward (differentiable
again with ``create_graph=True``). ``NO_TORCH[op]`` says why an op has no entry.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def _dims(x, axes):
    return tuple(range(x.ndim)) if axes is None else tuple(a % x.ndim for a in ((axes,) if isinstance(axes, int) else axes))


def _vjp(forward, shape_of_input, g, like):
    """d/d(input) of <forward(input), g> at input = 0 (forward is linear in it), differentiable in g."""
    x0 = torch.zeros(shape_of_input, dtype=like.dtype, requires_grad=True)
    (dx,) = torch.autograd.grad(forward(x0), x0, g, create_graph=True)
    return dx


def _pad_nchw(x, pad, value=0.0):
    """graphc/ONNX pad order (top, left, bottom, right) -> F.pad's (left, right, top, bottom)."""
    t, left, b, r = pad
    return F.pad(x, (left, r, t, b), value=value) if any(pad) else x


def _conv(x, w, stride=(1, 1), pad=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    return F.conv2d(_pad_nchw(x, pad), w, stride=tuple(stride), dilation=tuple(dilation), groups=groups)


def _symmetric(pad) -> bool:
    return pad[0] == pad[2] and pad[1] == pad[3]


def _max_pool(x, kernel, stride, pad, dilation, ceil_mode, **kw):
    stride = stride or kernel
    if _symmetric(pad):
        return F.max_pool2d(x, kernel, stride, (pad[0], pad[1]), dilation, ceil_mode, **kw)
    assert not ceil_mode, "asymmetric padding with ceil_mode has no torch spelling"
    return F.max_pool2d(_pad_nchw(x, pad, -math.inf), kernel, stride, 0, dilation, False, **kw)


def _max_pool_select(h, x, kernel, stride, pad, dilation, ceil_mode):
    """h read at the position of each window's max in x (torch's return_indices)."""
    y, idx = _max_pool(x, kernel, stride, pad, dilation, ceil_mode, return_indices=True)
    src = h if _symmetric(pad) else _pad_nchw(h, pad)
    return src.flatten(2).gather(2, idx.flatten(2)).view_as(y)


def _avg_pool(x, kernel, stride, pad, ceil_mode, count_include_pad):
    stride = stride or kernel
    if _symmetric(pad):
        return F.avg_pool2d(x, kernel, stride, (pad[0], pad[1]), ceil_mode, count_include_pad)
    assert count_include_pad and not ceil_mode, "no torch spelling"
    return F.avg_pool2d(_pad_nchw(x, pad), kernel, stride, 0, False, True)


def _slice_index(n, start, end, step):
    return torch.as_tensor(np.arange(n)[slice(start, end, step)].copy(), dtype=torch.int64)  # copy: negative steps give negative strides


def _slice(x, starts, ends, axes, steps):
    axes = range(len(starts)) if axes is None else axes
    steps = (1,) * len(starts) if steps is None else steps
    for s, e, a, st in zip(starts, ends, axes, steps):
        a %= x.ndim
        x = x.index_select(a, _slice_index(x.shape[a], s, e, st))
    return x


def _pad(x, pads, mode, value):
    n = x.ndim
    begin, end = pads[:n], pads[n:]
    for a in range(n):  # crops (negative pads) first
        x = x.narrow(a, max(-begin[a], 0), x.shape[a] - max(-begin[a], 0) - max(-end[a], 0))
    pos = [(max(b, 0), max(e, 0)) for b, e in zip(begin, end)]
    if mode == "constant":
        return F.pad(x, [p for b, e in reversed(pos) for p in (b, e)], value=value)
    first = next((a for a, p in enumerate(pos) if any(p)), n)
    if first == n:
        return x
    lead = x.shape[:first]
    y = x.reshape(-1, *x.shape[first:])  # batch of the unpadded leading dims
    y = F.pad(y, [p for b, e in reversed(pos[first:]) for p in (b, e)], mode={"reflect": "reflect", "edge": "replicate"}[mode])
    return y.reshape(*lead, *y.shape[1:])


def _wrap(idx, n):
    return torch.where(idx < 0, idx + n, idx).long()


def _gather(x, idx, axis):
    a = axis % x.ndim
    flat = x.index_select(a, _wrap(idx, x.shape[a]).reshape(-1))
    return flat.reshape(*x.shape[:a], *idx.shape, *x.shape[a + 1 :])


def _gather_nd(x, idx, batch_dims):
    def one(data, ind):
        k = ind.shape[-1]
        return data[tuple(_wrap(ind[..., j], data.shape[j]) for j in range(k))]

    if batch_dims == 0:
        return one(x, idx)
    assert batch_dims == 1
    return torch.stack([one(x[b], idx[b]) for b in range(x.shape[0])])


def _scan(fn, neutral):
    def scan(x, axis, exclusive, reverse):
        a = axis % x.ndim
        y = x.flip(a) if reverse else x
        if exclusive:  # neutral element first, last element dropped
            first = torch.full_like(y.narrow(a, 0, 1), neutral)
            y = torch.cat([first, y.narrow(a, 0, y.shape[a] - 1)], a)
        y = fn(y, a)
        return y.flip(a) if reverse else y

    return scan


def _prod(x, axes, keepdims):
    for a in sorted(_dims(x, axes), reverse=True):
        x = torch.prod(x, a, keepdim=True)
    return x if keepdims else x.reshape([d for i, d in enumerate(x.shape) if i not in _dims(x, axes)])


def _unsqueeze(x, axes):
    rank = x.ndim + len(axes)
    for a in sorted(a % rank for a in axes):
        x = x.unsqueeze(a)
    return x


def _scatter_elements(data, idx, updates, axis, reduction):
    idx = _wrap(idx, data.shape[axis])
    if reduction == "none":
        return data.scatter(axis, idx, updates)
    if reduction == "add":
        return data.scatter_add(axis, idx, updates)
    return data.scatter_reduce(axis, idx, updates, {"mul": "prod", "max": "amax", "min": "amin"}[reduction], include_self=True)


def _scatter_nd(data, idx, updates, reduction, batch_dims):
    assert reduction in ("none", "add") and batch_dims == 0, "torch's index_put only assigns or accumulates"
    k = idx.shape[-1]
    index = tuple(_wrap(idx[..., j], data.shape[j]) for j in range(k))
    return data.index_put(index, updates, accumulate=reduction == "add")


def _sdpa(q, k, v, *mask, scale, causal, softcap):
    """The attention math with graphc's semantics (a fully masked row attends to nothing: 0)."""
    s = q @ k.transpose(-1, -2) * (1.0 / math.sqrt(q.shape[-1]) if scale is None else scale)
    if softcap:
        s = softcap * torch.tanh(s / softcap)
    allowed = torch.ones(s.shape[-2:], dtype=torch.bool)
    if causal:
        allowed = torch.tril(allowed)
    if mask and mask[0].dtype == torch.bool:
        allowed = allowed & mask[0]
    elif mask:
        s = s + mask[0]
    s = torch.where(allowed, s, -math.inf)
    live = s.amax(-1, keepdim=True) > -math.inf
    p = torch.where(live, torch.softmax(torch.where(live, s, 0.0), -1), 0.0)
    return p @ v


def _batch_norm(x, scale, bias, mean, var, eps):
    col = lambda t: t.reshape(-1, *([1] * (x.ndim - 2)))  # noqa: E731
    return (x - col(mean)) / torch.sqrt(col(var) + eps) * col(scale) + col(bias)


def _sgd(p, g, lr, step, *buf, momentum, dampening, nesterov, weight_decay):
    """torch.optim.SGD's single-tensor step as a function."""
    d = g + weight_decay * p if weight_decay else g
    if not momentum:
        return p - lr * d
    new = d if dampening and int(step) <= 1 else buf[0] * momentum + (1 - dampening) * d
    return p - lr * (d + momentum * new if nesterov else new), new


def _adam(p, g, lr, step, m, v, beta1, beta2, eps, weight_decay, decoupled):
    """torch.optim.Adam/AdamW's single-tensor step as a function."""
    if weight_decay and not decoupled:
        g = g + weight_decay * p
    if weight_decay and decoupled:
        p = p * (1 - lr * weight_decay)
    m1 = torch.lerp(m, g, 1 - beta1)
    v1 = v * beta2 + (1 - beta2) * g * g
    t = float(step)
    denom = v1.sqrt() / math.sqrt(1 - beta2**t) + eps
    return p - lr / (1 - beta1**t) * m1 / denom, m1, v1


def _unpack(wp, n):
    """pack_panels' inverse: [N/panel, *rest, panel] -> [n, *rest]."""
    perm = (0, wp.ndim - 1, *range(1, wp.ndim - 1))
    return wp.permute(perm).reshape(-1, *wp.shape[1:-1])[:n]


def _pack(w, panel):
    pad = -w.shape[0] % panel
    wp = torch.cat([w, w.new_zeros(pad, *w.shape[1:])]) if pad else w
    return wp.reshape(-1, panel, *w.shape[1:]).permute(0, *range(2, w.ndim + 1), 1)


def _unary(name):
    return lambda x: getattr(torch, name)(x)


# ---------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------
_UNARY = ["abs", "acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "erf", "exp", "log", "log1p", "neg",
          "reciprocal", "relu", "rsqrt", "sigmoid", "sin", "sinh", "sqrt", "tan", "tanh"]

TORCH = {name: _unary(name) for name in _UNARY}
TORCH.update({
    "silu": F.silu,
    "gelu": lambda x, approximate: F.gelu(x, approximate=approximate),
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "pow": torch.pow,
    "maximum": torch.maximum, "minimum": torch.minimum,
    "mod": lambda a, b, fmod: torch.fmod(a, b) if fmod else torch.remainder(a, b),
    "where": torch.where,
    "cast": lambda x, dtype: x.to({"f16": torch.float16, "f32": torch.float32, "f64": torch.float64, "bf16": torch.bfloat16}.get(dtype, torch.int64) if dtype != "bool" else torch.bool),
    "dropout": lambda x, p: F.dropout(x, p, training=False),
    "sum": lambda x, axes, keepdims: torch.sum(x, _dims(x, axes), keepdim=keepdims),
    "mean": lambda x, axes, keepdims: torch.mean(x, _dims(x, axes), keepdim=keepdims),
    "max": lambda x, axes, keepdims: torch.amax(x, _dims(x, axes), keepdim=keepdims),
    "min": lambda x, axes, keepdims: torch.amin(x, _dims(x, axes), keepdim=keepdims),
    "prod": _prod,
    "var": lambda x, axes, keepdims, correction: torch.var(x, _dims(x, axes), correction=correction, keepdim=keepdims),
    "softmax": lambda x, axis: torch.softmax(x, axis),
    "log_softmax": lambda x, axis: torch.log_softmax(x, axis),
    "layer_norm": lambda x, w, b, axis, eps: F.layer_norm(x, x.shape[axis % x.ndim:], w, b, eps),
    "batch_norm": _batch_norm,
    "linear": F.linear,
    "matmul": torch.matmul,
    "conv2d": _conv,
    "conv2d_grad_input": lambda g, w, input_shape, **a: _vjp(lambda x: _conv(x, w, **a), input_shape, g, g),
    "conv2d_grad_weight": lambda g, x, weight_shape, **a: _vjp(lambda w: _conv(x, w, **a), weight_shape, g, g),
    "max_pool2d": _max_pool,
    "max_pool2d_grad": lambda g, x, **a: torch.autograd.grad(_max_pool(x, **a), x, g, create_graph=True)[0],
    "max_pool2d_select": _max_pool_select,
    "avg_pool2d": _avg_pool,
    "avg_pool2d_grad": lambda g, input_shape, **a: _vjp(lambda x: _avg_pool(x, **a), input_shape, g, g),
    "adaptive_avg_pool2d": lambda x, output_size: F.adaptive_avg_pool2d(x, output_size),
    "broadcast_to": lambda x, shape: torch.broadcast_to(x, shape),
    "concat": lambda *xs, axis: torch.cat(xs, axis),
    "flatten": lambda x, start_dim, end_dim: torch.flatten(x, start_dim, end_dim),
    "reshape": lambda x, shape: x.reshape(shape),
    "squeeze": lambda x, axes: torch.squeeze(x, tuple(a % x.ndim for a in axes)),
    "unsqueeze": _unsqueeze,
    "transpose": lambda x, perm: x.permute(perm),
    "slice": _slice,
    "slice_grad": lambda g, shape, **a: _vjp(lambda x: _slice(x, **a), shape, g, g),
    "split": lambda x, axis, sections: torch.split(x, list(sections), axis),
    "tile": lambda x, repeats: torch.tile(x, repeats),
    "pad": _pad,
    "gather": _gather,
    "gather_elements": lambda x, idx, axis: torch.gather(x, axis, _wrap(idx, x.shape[axis])),
    "gather_nd": _gather_nd,
    "gather_grad": lambda g, idx, axis, shape: _vjp(lambda x: _gather(x, idx, axis), shape, g, g),
    "scatter_elements": _scatter_elements,
    "scatter_nd": _scatter_nd,
    "topk": lambda x, k, axis, largest: torch.topk(x, k, axis, largest),
    "cumsum": _scan(lambda y, a: torch.cumsum(y, a), 0.0),
    "cumprod": _scan(lambda y, a: torch.cumprod(y, a), 1.0),
    "scaled_dot_product_attention": _sdpa,
    "cross_entropy": lambda x, t, label_smoothing, ignore_index, reduction: F.cross_entropy(
        x, t.long(), ignore_index=ignore_index, label_smoothing=label_smoothing, reduction=reduction),
    "mse_loss": lambda p, t, reduction: F.mse_loss(p, t, reduction=reduction),
    "sgd_update": _sgd,
    "adam_update": _adam,
    "pack_panels": _pack,
    "linear_packed": lambda x, wp, n: F.linear(x, _unpack(wp, n)),
    "conv2d_packed": lambda x, wp, out_channels, **a: _conv(x, _unpack(wp, out_channels), **a),
})

# Samples whose semantics torch does not share (each one named, with the reason)
NOT_COMPARABLE = {
    ("scatter_elements", "duplicates: last wins"): "ONNX ScatterElements keeps the last of duplicate indices and only it gets "
    "a gradient; torch.scatter's backward gives every duplicate the gradient",
    ("scatter_nd", "duplicates: last wins"): "as scatter_elements: torch's index_put backward gives every duplicate the gradient",
    **{("scatter_nd", f"{r}, pairs into rank 3"): "torch's index_put only assigns or accumulates (no mul/max/min reduction)"
       for r in ("mul", "max", "min")},
    ("scatter_nd", "batch_dims 1"): "torch's index_put has no batch dimensions",
}

# Differentiable ops without a torch function (each checked against finite differences in tests/ops/test_grads.py)
NO_TORCH: dict[str, str] = {
    # window-relative taps (torch's return_indices are flat input positions); the gradient of the
    # relu -> max pool composition they serve is compared with torch's in tests/training/test_conv_pool_train.py
    **{op: "indexed by window taps, not torch's flat indices"
       for op in ("max_pool2d_with_index", "max_pool2d_index_grad", "max_pool2d_index_select")},
}
