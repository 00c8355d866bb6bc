"""Backward convolutions as forward ones, so the register-blocked conv2d kernel runs them too.

A train step's conv2d_grad_input and conv2d_grad_weight do as much arithmetic as
the forward conv; rewritten as conv2d (plus cheap transposes) they get the conv2d
schedule instead of a generic loop nest (measured on the seed CNN's second conv at
batch 64: 300-360 ms each before, a few ms after).

* ``conv2d_grad_input(g, w)`` with stride 1 is the convolution of g, padded by
  d*(k-1) - pad, with the kernel transposed (in <-> out channels) and flipped;
* ``conv2d_grad_weight(g, x)`` is a convolution of x with g in which batch and
  channel axes trade places: ``conv2d(x^T, g^T, stride=dilation, dilation=stride)``
  gives dW^T (trimmed to the kernel size when the forward left trailing rows unused).

Grouped convolutions and strided input gradients (they need zeros inserted between
the cotangent's elements) keep their own kernels; the decline says so.
"""
from __future__ import annotations

from graphc import ops
from graphc.ir import Graph
from graphc.pattern import op, var
from graphc.tensor import Tensor

from .rules import RewriteReport, Rule, apply_rules

_SWAP01 = (1, 0, 2, 3)


def _check_input(m, ctx):
    a = m.root.node.attrs
    if a["groups"] != 1:
        return f"grouped conv (groups={a['groups']})"
    if tuple(a["stride"]) != (1, 1):
        return f"stride {list(a['stride'])}: the transposed conv would need zeros between the cotangent's elements"
    (kh, kw), (dh, dw) = m["w"].shape[2:], a["dilation"]
    pt, pl, pb, pr = a["pad"]
    if max(pt, pb) > dh * (kh - 1) or max(pl, pr) > dw * (kw - 1):
        return f"padding {list(a['pad'])} wider than the dilated kernel's reach"
    return None


def _input_as_conv(b, m):
    a = m.root.node.attrs
    g, w = Tensor(m["g"]), Tensor(m["w"])
    (kh, kw), (dh, dw) = w.shape[2:], a["dilation"]
    pt, pl, pb, pr = a["pad"]
    flipped = ops.slice(ops.transpose(w, perm=_SWAP01), starts=(kh - 1, kw - 1), ends=(-(2**62), -(2**62)), axes=(2, 3), steps=(-1, -1))
    pad = (dh * (kh - 1) - pt, dw * (kw - 1) - pl, dh * (kh - 1) - pb, dw * (kw - 1) - pr)
    return ops.conv2d(g, flipped, stride=(1, 1), pad=pad, dilation=(dh, dw), groups=1).value


def _check_weight(m, ctx):
    groups = m.root.node.attrs["groups"]
    return f"grouped conv (groups={groups})" if groups != 1 else None


def _weight_as_conv(b, m):
    a = m.root.node.attrs
    g, x = Tensor(m["g"]), Tensor(m["x"])
    o, c, kh, kw = a["weight_shape"]
    dwt = ops.conv2d(ops.transpose(x, perm=_SWAP01), ops.transpose(g, perm=_SWAP01), stride=a["dilation"], pad=a["pad"], dilation=a["stride"])
    if dwt.shape[2:] != (kh, kw):  # the forward's windows never reached the last rows/columns
        dwt = ops.slice(dwt, starts=(0, 0), ends=(kh, kw), axes=(2, 3), steps=(1, 1))
    return ops.transpose(dwt, perm=_SWAP01).value


RULES = [
    Rule("conv_grad_input_as_conv", op("conv2d_grad_input", var("g"), var("w")), _input_as_conv, _check_input),
    Rule("conv_grad_weight_as_conv", op("conv2d_grad_weight", var("g"), var("x")), _weight_as_conv, _check_weight),
]


def backward_convs(graph: Graph, report: RewriteReport | None = None) -> Graph:
    return apply_rules(graph, RULES, report)
