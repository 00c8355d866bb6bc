"""Linear algebra ONNX ops: Einsum and Det.

Einsum is planned into transpose / reshape / slice / sum / matmul. The equation is parsed into one list of labels per operand (an ellipsis becomes
labels of its own, right-aligned so they broadcast as numpy does). Then:

1. each operand takes its diagonals (a label repeated in one operand: ``ii``) and sums
   out the labels no other operand and not the output has;
2. operands are combined left to right: two operands become one batched matmul
   ``[batch, M, K] @ [batch, K, N]`` where batch labels are shared and still needed,
   K the shared labels nothing later needs, M and N the labels of one side only;
3. the result is transposed to the output's label order.

Every step is exact: the only arithmetic is the matmuls' and the sums' own.

Det is the Leibniz formula over static sizes: a gather of the n! permutation
products' factors, their product, and a signed sum.
"""
from __future__ import annotations

import itertools
import math
import string

import numpy as np

from ...tensor import Tensor
from ..onnx import NodeContext, converter


def _split_term(ctx: NodeContext, term: str) -> tuple[str, bool, str]:
    """(letters before '...', whether there is one, letters after it)."""
    head, dots, tail = term.partition("...")
    if "." in head + tail:
        raise ctx.error(f"equation term {term!r} has a malformed ellipsis")
    bad = [ch for ch in head + tail if ch not in string.ascii_letters]
    if bad:
        raise ctx.error(f"equation term {term!r}: {bad[0]!r} is not a letter")
    return head, bool(dots), tail


def _ellipsis_labels(n: int) -> list[str]:
    """Labels for n ellipsis axes, named by their position from the right (so they broadcast)."""
    return [f".{k}" for k in reversed(range(n))]


def _parse_operand(ctx: NodeContext, term: str, rank: int) -> list[str]:
    head, dots, tail = _split_term(ctx, term)
    n = rank - len(head) - len(tail)
    if n < 0 or (n > 0 and not dots):
        raise ctx.error(f"equation term {term!r} does not match an input of rank {rank}")
    return list(head) + _ellipsis_labels(n) + list(tail)


def _output_labels(ctx: NodeContext, rhs: str | None, operands: list[list[str]]) -> list[str]:
    rank = max((sum(lab.startswith(".") for lab in ops) for ops in operands), default=0)
    ellipsis = _ellipsis_labels(rank)
    if rhs is None:  # implicit output: the ellipsis, then the labels used once, alphabetically
        counts: dict[str, int] = {}
        for ops in operands:
            for lab in ops:
                counts[lab] = counts.get(lab, 0) + 1
        return ellipsis + sorted(lab for lab, c in counts.items() if c == 1 and not lab.startswith("."))
    head, dots, tail = _split_term(ctx, rhs)
    out = list(head) + (ellipsis if dots else []) + list(tail)
    if len(set(out)) != len(out):
        raise ctx.error(f"output term {rhs!r} repeats a label")
    known = {lab for ops in operands for lab in ops}
    missing = [lab for lab in out if lab not in known]
    if missing:
        raise ctx.error(f"output labels {missing} appear in no input term")
    return out


class _Operand:
    """A tensor with one label per axis."""

    def __init__(self, t: Tensor, labels: list[str]):
        self.t, self.labels = t, labels

    def size(self, label: str) -> int:
        return self.t.shape[self.labels.index(label)]


def _transpose(ctx: NodeContext, op: _Operand, order: list[str]) -> _Operand:
    perm = tuple(op.labels.index(lab) for lab in order)
    t = op.t if perm == tuple(range(len(perm))) else ctx.op("transpose", op.t, perm=perm)
    return _Operand(t, list(order))


def _reshape(ctx: NodeContext, t: Tensor, shape: tuple[int, ...]) -> Tensor:
    return t if tuple(t.shape) == shape else ctx.op("reshape", t, shape=shape)


def _diagonal(ctx: NodeContext, op: _Operand, label: str) -> _Operand:
    """Keep the entries where the two axes labelled `label` agree: move them last, flatten them
    to n*n, and take every (n+1)-th element."""
    first = op.labels.index(label)
    second = op.labels.index(label, first + 1)
    rest = [k for k in range(len(op.labels)) if k not in (first, second)]
    n = op.t.shape[first]
    if op.t.shape[second] != n:
        raise ctx.error(f"label {label!r} names axes of sizes {n} and {op.t.shape[second]}")
    perm = tuple(rest) + (first, second)
    t = op.t if perm == tuple(range(len(perm))) else ctx.op("transpose", op.t, perm=perm)
    lead = tuple(op.t.shape[k] for k in rest)
    flat = _reshape(ctx, t, lead + (n * n,))
    diag = ctx.op("slice", flat, starts=(0,), ends=(n * n,), axes=(len(lead),), steps=(n + 1,))
    return _Operand(diag, [op.labels[k] for k in rest] + [label])


def _sum_labels(ctx: NodeContext, op: _Operand, labels: list[str]) -> _Operand:
    if not labels:
        return op
    axes = tuple(op.labels.index(lab) for lab in labels)
    return _Operand(ctx.op("sum", op.t, axes=axes, keepdims=False), [lab for lab in op.labels if lab not in labels])


def _prepare(ctx: NodeContext, op: _Operand, needed: set[str]) -> _Operand:
    """Diagonals, then sum out the labels nothing else needs."""
    for label in dict.fromkeys(op.labels):
        while op.labels.count(label) > 1:
            op = _diagonal(ctx, op, label)
    return _sum_labels(ctx, op, [lab for lab in op.labels if lab not in needed])


def _broadcast(ctx: NodeContext, op: _Operand, sizes: dict[str, int]) -> _Operand:
    shape = tuple(sizes[lab] for lab in op.labels)
    if tuple(op.t.shape) == shape:
        return op
    return _Operand(ctx.op("broadcast_to", op.t, shape=shape), op.labels)


def _contract(ctx: NodeContext, a: _Operand, b: _Operand, needed: set[str]) -> _Operand:
    """a and b as one operand: a batched matmul over their shared labels that `needed` lacks."""
    sizes: dict[str, int] = {}
    for op in (a, b):
        for lab, d in zip(op.labels, op.t.shape):
            if sizes.get(lab, 1) == 1:
                sizes[lab] = d
            elif d not in (1, sizes[lab]):
                raise ctx.error(f"label {lab!r} has sizes {sizes[lab]} and {d}, which do not broadcast")
    shared = [lab for lab in a.labels if lab in b.labels]
    batch = [lab for lab in shared if lab in needed]
    k = [lab for lab in shared if lab not in needed]
    m = [lab for lab in a.labels if lab not in shared]
    n = [lab for lab in b.labels if lab not in shared]
    a = _broadcast(ctx, _transpose(ctx, a, batch + m + k), sizes)
    b = _broadcast(ctx, _transpose(ctx, b, batch + k + n), sizes)

    def dims(labels):
        return tuple(sizes[lab] for lab in labels)

    def size(labels):
        return math.prod(dims(labels))

    a3 = _reshape(ctx, a.t, (size(batch), size(m), size(k)))
    b3 = _reshape(ctx, b.t, (size(batch), size(k), size(n)))
    product = ctx.op("matmul", a3, b3)
    return _Operand(_reshape(ctx, product, dims(batch) + dims(m) + dims(n)), batch + m + n)


@converter("Einsum")
def _einsum(ctx: NodeContext):
    equation = "".join(str(ctx.attr("equation")).split())
    lhs, arrow, rhs = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) != ctx.num_inputs:
        raise ctx.error(f"equation {equation!r} has {len(terms)} input terms for {ctx.num_inputs} inputs")
    inputs = [ctx.input(i) for i in range(ctx.num_inputs)]
    labels = [_parse_operand(ctx, term, t.ndim) for term, t in zip(terms, inputs)]
    out = _output_labels(ctx, rhs if arrow else None, labels)
    if any(t.dtype != inputs[0].dtype for t in inputs):
        raise ctx.error(f"inputs have different dtypes: {', '.join(t.dtype for t in inputs)}")

    operands = [_Operand(t, lab) for t, lab in zip(inputs, labels)]

    def needed_after(i: int) -> set[str]:
        """Labels the output or the operands from i on use."""
        return set(out).union(*(set(op.labels) for op in operands[i:]))

    result = _prepare(ctx, operands[0], needed_after(1))
    for i in range(1, len(operands)):
        nxt = _prepare(ctx, operands[i], needed_after(i + 1) | set(result.labels))
        result = _contract(ctx, result, nxt, needed_after(i + 1))
    result = _sum_labels(ctx, result, [lab for lab in result.labels if lab not in out])
    return _transpose(ctx, result, out).t


# the Leibniz formula has n! terms of n factors: beyond this size it costs too much
DET_MAX_SIZE = 6


def _permutation_sign(perm: tuple[int, ...]) -> int:
    inversions = sum(1 for i in range(len(perm)) for j in range(i + 1, len(perm)) if perm[i] > perm[j])
    return -1 if inversions % 2 else 1


@converter("Det")
def _det(ctx: NodeContext):
    """det X = sum over permutations p of sign(p) * prod_i X[i, p(i)]."""
    x = ctx.input(0)
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ctx.error(f"needs square matrices in the last two axes, got shape {list(x.shape)}")
    n = x.shape[-1]
    if n > DET_MAX_SIZE:
        raise ctx.error(f"{n}x{n} matrices are not supported (graphc computes Det of up to {DET_MAX_SIZE}x{DET_MAX_SIZE} exactly)")
    lead = tuple(x.shape[:-2])
    if n == 0:
        return ctx.constant(np.ones(lead, dtype=np.dtype(x.type.np_dtype)))
    perms = list(itertools.permutations(range(n)))
    factors = np.array([[i * n + p[i] for i in range(n)] for p in perms], dtype=np.int64)  # positions in the flat matrix
    signs = np.array([_permutation_sign(p) for p in perms], dtype=x.type.np_dtype)
    flat = _reshape(ctx, x, lead + (n * n,))
    terms = ctx.op("prod", ctx.op("gather", flat, ctx.constant(factors), axis=len(lead)), axes=(len(lead) + 1,))
    return ctx.op("sum", ctx.op("mul", terms, ctx.constant(signs)), axes=(len(lead),))
