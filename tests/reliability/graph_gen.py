"""Hypothesis strategies for random well-typed graphc graphs.

A graph is grown step by step from one or two random inputs: each step draws a
*block* and applies it to values already in the graph — single ops drawn from the
op registry (elementwise, broadcasting binaries, reductions, shape ops) and op
chains that trigger the fusion rules (conv -> bias -> relu -> pool, linear -> bias
-> gelu -> residual, a BERT-style attention block, a decomposed layer norm, a
decomposed GELU). Weights are scaled so values stay O(1) through the chain (no
overflow: the fuzz compares numerics, not inf handling).
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from graphc import ops
from graphc.ir import Graph, GraphBuilder, TensorType
from graphc.tensor import Tensor

DIMS = [1, 2, 3, 4, 5, 7, 8]
UNARY = ["relu", "gelu", "silu", "sigmoid", "tanh", "neg", "abs", "erf"]
BINARY = ["add", "sub", "mul", "maximum", "minimum"]


class _Ctx:
    def __init__(self, draw, b: GraphBuilder):
        self.draw, self.b = draw, b
        self.values: list[Tensor] = []
        self.rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))

    def pick(self, pred=lambda t: True) -> Tensor | None:
        cands = [t for t in self.values if pred(t)]
        return self.draw(st.sampled_from(cands)) if cands else None

    def const(self, shape, scale=1.0) -> np.ndarray:
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def add(self, t: Tensor) -> None:
        self.values.append(t)


# -- blocks ---------------------------------------------------------------------------------
def _unary(c: _Ctx):
    x = c.pick()
    name = c.draw(st.sampled_from(UNARY))
    if name == "gelu":
        return ops.gelu(x, approximate=c.draw(st.sampled_from(["none", "tanh"])))
    return getattr(ops, name)(x)


def _binary(c: _Ctx):
    x = c.pick()
    name = c.draw(st.sampled_from(BINARY))
    same = [t for t in c.values if t.shape == x.shape and t is not x]
    kind = c.draw(st.sampled_from(["value", "row", "scalar"] if same else ["row", "scalar"]))
    if kind == "value":
        y = c.draw(st.sampled_from(same))
    elif kind == "row":  # broadcast a constant along the last axis (a bias)
        y = c.const(x.shape[-1:])
    else:
        y = np.float32(c.draw(st.sampled_from([0.5, -1.0, 2.0])))
    args = (x, y) if c.draw(st.booleans()) or kind == "scalar" else (y, x)
    return getattr(ops, name)(*args)


def _reduce(c: _Ctx):
    x = c.pick(lambda t: t.ndim >= 1)
    axis = c.draw(st.integers(-x.ndim, x.ndim - 1))
    kind = c.draw(st.sampled_from(["sum", "mean", "max", "softmax", "log_softmax"]))
    if kind in ("softmax", "log_softmax"):
        return getattr(ops, kind)(x, axis=axis)
    return getattr(ops, kind)(x, axes=(axis,), keepdims=c.draw(st.booleans()))


def _shape(c: _Ctx):
    x = c.pick(lambda t: t.ndim >= 2)
    if x is None:
        return None
    kind = c.draw(st.sampled_from(["transpose", "reshape", "slice", "concat"]))
    if kind == "transpose":
        perm = c.draw(st.permutations(list(range(x.ndim))))
        return ops.transpose(x, perm=tuple(perm))
    if kind == "reshape":  # merge the last two axes
        return ops.reshape(x, shape=x.shape[:-2] + (x.shape[-2] * x.shape[-1],))
    if kind == "slice":
        axis = c.draw(st.integers(0, x.ndim - 1))
        if x.shape[axis] < 2:
            return None
        return ops.slice(x, starts=(0,), ends=(x.shape[axis] // 2 + 1,), axes=(axis,), steps=(1,))
    return ops.concat(x, x, axis=c.draw(st.integers(0, x.ndim - 1)))


def _linear_block(c: _Ctx):
    """linear -> [bias] -> [gelu|relu] -> [residual]: the dense epilogue rule's pattern."""
    x = c.pick(lambda t: t.ndim >= 2)
    if x is None:
        return None
    k = x.shape[-1]
    n = c.draw(st.sampled_from([k, 3, 8, 16]))
    y = ops.linear(x, c.const((n, k), 1 / math.sqrt(k)))
    if c.draw(st.booleans()):
        y = y + c.const((n,))
    act = c.draw(st.sampled_from([None, "gelu", "relu"]))
    if act:
        y = getattr(ops, act)(y)
    if n == k and c.draw(st.booleans()):
        y = y + x
    return y


def _conv_block(c: _Ctx):
    """conv2d -> [bias] -> [relu] -> [max/avg pool]: the conv-bias-relu-pool rule's pattern."""
    x = c.pick(lambda t: t.ndim == 4 and t.shape[2] >= 2 and t.shape[3] >= 2)
    if x is None:
        return None
    cin = x.shape[1]
    cout = c.draw(st.sampled_from([4, 6, 8, 16]))
    k = c.draw(st.sampled_from([1, 3]))
    pad = k // 2
    y = ops.conv2d(x, c.const((cout, cin, k, k), 1 / math.sqrt(cin * k * k)), pad=(pad,) * 4)
    if c.draw(st.booleans()):
        y = y + c.const((cout, 1, 1))
    if c.draw(st.sampled_from([True, True, False])):
        y = ops.relu(y)
    pool = c.draw(st.sampled_from([None, "max_pool2d", "avg_pool2d", "max_pool2d"]))
    if pool:
        y = getattr(ops, pool)(y, kernel=(2, 2), stride=(2, 2))
    return y


def _attention_block(c: _Ctx):
    """q @ kT * scale [+ mask] -> softmax -> @ v: the attention rule's pattern."""
    x = c.pick(lambda t: t.ndim == 3)
    if x is None:
        return None
    _, s, d = x.shape
    q = ops.linear(x, c.const((d, d), 1 / math.sqrt(d)))
    k = ops.linear(x, c.const((d, d), 1 / math.sqrt(d)))
    scores = ops.matmul(q, ops.transpose(k, perm=(0, 2, 1))) * np.float32(1 / math.sqrt(d))
    if c.draw(st.booleans()):
        mask = np.zeros((1, 1, s), np.float32)
        mask[..., c.draw(st.integers(1, s)):] = -1e9
        scores = scores + mask
    return ops.matmul(ops.softmax(scores, axis=-1), x)


def _layer_norm_block(c: _Ctx):
    """The mean/sub/var/rsqrt decomposition the layer-norm rule recognizes."""
    x = c.pick(lambda t: t.ndim >= 2 and t.shape[-1] >= 2)
    if x is None:
        return None
    mu = ops.mean(x, axes=(-1,), keepdims=True)
    d = x - mu
    var = ops.mean(d * d, axes=(-1,), keepdims=True)
    return d / ops.sqrt(var + np.float32(1e-5)) * c.const(x.shape[-1:]) + c.const(x.shape[-1:])


def _gelu_block(c: _Ctx):
    x = c.pick()
    return x * np.float32(0.5) * (ops.erf(x * np.float32(1 / math.sqrt(2))) + np.float32(1.0))


# the fusion-triggering blocks are listed twice: drawn more often than single ops
BLOCKS = [_unary, _binary, _reduce, _shape, _gelu_block] + 2 * [_linear_block, _conv_block, _attention_block, _layer_norm_block]


@st.composite
def graphs(draw, max_steps: int = 6) -> tuple[Graph, list[np.ndarray]]:
    """(a random well-typed graph, inputs for it)."""
    b = GraphBuilder("fuzz")
    c = _Ctx(draw, b)
    n_inputs = draw(st.integers(1, 2))
    inputs = []
    rank = draw(st.sampled_from([2, 3, 3, 4, 4]))  # rank 3 feeds attention blocks, rank 4 conv blocks
    shape = tuple(draw(st.sampled_from(DIMS)) for _ in range(rank))
    for i in range(n_inputs):
        c.add(Tensor(b.input(f"x{i}", TensorType("f32", shape))))
        inputs.append(c.rng.standard_normal(shape).astype(np.float32))
    with b:
        for _ in range(draw(st.integers(1, max_steps))):
            block = draw(st.sampled_from(BLOCKS))
            out = block(c)
            if out is not None:
                c.add(out)
        outputs = [c.values[-1]]
        extra = draw(st.sampled_from(c.values))
        if extra is not outputs[0] and extra.value not in [v for v in b.inputs]:
            outputs.append(extra)
    return b.build([t.value for t in outputs]), inputs
