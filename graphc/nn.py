"""`graphc.nn`: a torch.nn.functional-style function set over graphc tensors.

Thin wrappers that translate familiar signatures (int-or-tuple arguments, optional
bias, `dim=`) into graphc ops, for use inside `graphc.trace`. Weights may be numpy
arrays (captured as constants; name them with `graphc.param`) or traced tensors.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from . import ops
from .ir import current_builder
from .tensor import Tensor, as_value


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(as_value(x, current_builder()))


def _add_channel_bias(y: Tensor, bias) -> Tensor:
    if bias is None:
        return y
    b = _tensor(bias)
    return y + ops.reshape(b, shape=(b.shape[0], 1, 1))


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """torch.nn.functional.conv2d: padding is an int, (ph, pw), or (top, left, bottom, right)."""
    if isinstance(padding, int):
        pad = (padding,) * 4
    elif len(padding) == 2:
        pad = (padding[0], padding[1], padding[0], padding[1])
    else:
        pad = tuple(padding)
    y = ops.conv2d(x, weight, stride=_pair(stride), pad=pad, dilation=_pair(dilation), groups=groups)
    return _add_channel_bias(y, bias)


def _pool_pad(padding) -> tuple[int, int, int, int]:
    ph, pw = _pair(padding)
    return (ph, pw, ph, pw)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False) -> Tensor:
    k = _pair(kernel_size)
    return ops.max_pool2d(
        x, kernel=k, stride=_pair(stride) if stride is not None else k, pad=_pool_pad(padding), dilation=_pair(dilation), ceil_mode=ceil_mode
    )


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    k = _pair(kernel_size)
    return ops.avg_pool2d(
        x, kernel=k, stride=_pair(stride) if stride is not None else k, pad=_pool_pad(padding), ceil_mode=ceil_mode, count_include_pad=count_include_pad
    )


def adaptive_avg_pool2d(x, output_size) -> Tensor:
    return ops.adaptive_avg_pool2d(x, output_size=_pair(output_size))


def global_avg_pool2d(x) -> Tensor:
    return ops.adaptive_avg_pool2d(x, output_size=(1, 1))


def linear(x, weight, bias=None) -> Tensor:
    """x @ weight.T + bias, weight in torch's [out_features, in_features] layout."""
    y = ops.linear(x, weight)
    return y + bias if bias is not None else y


def relu(x) -> Tensor:
    return ops.relu(x)


def gelu(x, approximate: str = "none") -> Tensor:
    return ops.gelu(x, approximate=approximate)


def silu(x) -> Tensor:
    return ops.silu(x)


def sigmoid(x) -> Tensor:
    return ops.sigmoid(x)


def tanh(x) -> Tensor:
    return ops.tanh(x)


def softmax(x, dim: int = -1) -> Tensor:
    return ops.softmax(x, axis=dim)


def log_softmax(x, dim: int = -1) -> Tensor:
    return ops.log_softmax(x, axis=dim)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    x = _tensor(x)
    dt = x.type.np_dtype
    w = weight if weight is not None else np.ones(shape, dt)
    b = bias if bias is not None else np.zeros(shape, dt)
    return ops.layer_norm(x, w, b, axis=x.ndim - len(shape), eps=eps)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    x = _tensor(x)
    c = x.shape[1]
    dt = x.type.np_dtype
    w = weight if weight is not None else np.ones((c,), dt)
    b = bias if bias is not None else np.zeros((c,), dt)
    return ops.batch_norm(x, w, b, running_mean, running_var, eps=eps)


def dropout(x, p: float = 0.5, training: bool = False) -> Tensor:
    """Inference dropout is the identity (the op is kept so graphs mirror the source model)."""
    if training:
        raise NotImplementedError("training-mode dropout is part of graphc's training support, not inference tracing")
    return ops.dropout(x, p=p)


def embedding(ids, weight) -> Tensor:
    return ops.gather(weight, ids, axis=0)


def flatten(x, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return ops.flatten(x, start_dim=start_dim, end_dim=end_dim)


def scaled_dot_product_attention(q, k, v, attn_mask=None, is_causal: bool = False, scale: float | None = None) -> Tensor:
    """torch.nn.functional.scaled_dot_product_attention (bool masks: True = attend)."""
    args = (q, k, v) if attn_mask is None else (q, k, v, attn_mask)
    return ops.scaled_dot_product_attention(*args, causal=is_causal, scale=scale)


attention = scaled_dot_product_attention


def multi_head_attention(x, wq, wk, wv, wo, num_heads: int, bq=None, bk=None, bv=None, bo=None, mask=None, causal: bool = False) -> Tensor:
    """Self-attention block as in BERT/GPT: project, split heads, attend, merge heads, project."""
    x = _tensor(x)
    *lead, s, d = x.shape
    hd = d // num_heads

    def heads(t):
        t = t.reshape(*lead, s, num_heads, hd)
        perm = tuple(range(len(lead))) + (len(lead) + 1, len(lead), len(lead) + 2)
        return t.permute(perm)

    q, k, v = heads(linear(x, wq, bq)), heads(linear(x, wk, bk)), heads(linear(x, wv, bv))
    o = scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, scale=1.0 / math.sqrt(hd))
    perm = tuple(range(len(lead))) + (len(lead) + 1, len(lead), len(lead) + 2)
    o = o.permute(perm).reshape(*lead, s, d)
    return linear(o, wo, bo)


def concat(xs: Sequence, dim: int = 0) -> Tensor:
    return ops.concat(*xs, axis=dim)
