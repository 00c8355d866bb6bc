"""Gradient rules (written in graphc ops) against central finite differences, in float64.

For an op f and a random cotangent g, the rule's input gradients must equal
d/dx sum(f(x) * g), estimated by central differences on the numpy reference.
"""
from __future__ import annotations

import numpy as np
import pytest

from graphc.ir import GraphBuilder, TensorType
from graphc.ops.registry import REGISTRY
from graphc.runtime.interpreter import run_graph
from graphc.tensor import Tensor
from tests.ops.test_registry import samples_of

EPS = 1e-6
MAX_COORDS = 48


def grad_cases():
    for name in sorted(REGISTRY):
        if not REGISTRY[name].differentiable:
            continue
        for i, s in enumerate(samples_of(name)):
            if any(np.asarray(a).dtype.kind == "f" for a in s.inputs):
                yield pytest.param(name, i, id=f"{name}-{i}")


def _to64(a):
    a = np.asarray(a)
    return a.astype(np.float64) if a.dtype.kind == "f" else a


@pytest.mark.parametrize("name,idx", list(grad_cases()))
def test_gradient_matches_finite_differences(name, idx):
    op = REGISTRY[name]
    sample = samples_of(name)[idx]
    xs = [_to64(a) for a in sample.inputs]
    rng = np.random.default_rng(0)

    b = GraphBuilder(f"grad_{name}")
    ins = [b.input(f"x{i}", TensorType.of(a)) for i, a in enumerate(xs)]
    outs = b.emit(name, ins, sample.attrs)
    node = b.nodes[-1]
    gvals = [rng.standard_normal(v.shape) if v.dtype == "f64" else None for v in outs]
    if all(gv is None for gv in gvals):
        pytest.skip("no float output: nothing to differentiate")
    g_inputs = [b.input(f"g{j}", v.type) for j, (v, gv) in enumerate(zip(outs, gvals)) if gv is not None]
    with b:
        g_iter = iter(Tensor(v) for v in g_inputs)
        gt = [next(g_iter) if gv is not None else None for gv in gvals]  # None: no cotangent for that output
        out_t = [Tensor(v) for v in outs]
        grads = op.grad(
            gt[0] if len(outs) == 1 else tuple(gt),
            *[Tensor(v) for v in ins],
            out=out_t[0] if len(outs) == 1 else tuple(out_t),
            **node.attrs,
        )
    assert len(grads) == len(ins), f"{name}: grad returned {len(grads)} entries for {len(ins)} inputs"
    wanted = [
        (i, gr) for i, gr in enumerate(grads) if gr is not None and xs[i].dtype == np.float64 and i not in sample.no_grad_check
    ]
    if not wanted:
        pytest.skip("no float input gets a gradient in this sample")
    g = b.build([gr.value for _, gr in wanted])
    gin = [gv for gv in gvals if gv is not None]
    computed = run_graph(g, *xs, *gin)

    def objective(arrs):
        res = op.ref(*arrs, **node.attrs)
        res = res if isinstance(res, (tuple, list)) else (res,)
        return sum(float(np.sum(np.asarray(r, np.float64) * gv)) for r, gv in zip(res, gvals) if gv is not None)

    for (i, _), got in zip(wanted, computed):
        assert got.shape == xs[i].shape, f"{name}: gradient of input {i} has shape {got.shape}, input {xs[i].shape}"
        # check up to MAX_COORDS coordinates (all of them for small inputs)
        size = xs[i].size
        coords = np.arange(size) if size <= MAX_COORDS else rng.choice(size, MAX_COORDS, replace=False)
        num = np.empty(len(coords))
        for j, k in enumerate(coords):
            plus = [a.copy() for a in xs]
            minus = [a.copy() for a in xs]
            plus[i].reshape(-1)[k] += EPS
            minus[i].reshape(-1)[k] -= EPS
            num[j] = (objective(plus) - objective(minus)) / (2 * EPS)
        np.testing.assert_allclose(
            got.reshape(-1)[coords], num, rtol=1e-4, atol=1e-5, err_msg=f"{name}: gradient of input {i}"
        )
