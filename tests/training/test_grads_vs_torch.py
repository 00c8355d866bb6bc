"""Every gradient rule against torch.autograd of the same function (tests/training/torch_equivalents.py).

For an op, its samples (those with a float input, as in tests/ops/test_grads.py) and a
random cotangent g per float output, the rule's input gradients (run on the reference
interpreter, in float64) must equal torch.autograd.grad of sum(f(x) * g). An input the
rule gives no gradient (None) must get none or zeros from torch too.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from graphc.ir import GraphBuilder, TensorType
from graphc.ops.registry import REGISTRY
from graphc.runtime.interpreter import run_graph
from graphc.tensor import Tensor
from tests.ops.test_grads import _to64, grad_cases
from tests.ops.test_registry import samples_of
from tests.training.torch_equivalents import NO_TORCH, NOT_COMPARABLE, TORCH

DIFFERENTIABLE = sorted(n for n, r in REGISTRY.items() if r.differentiable)


def test_every_differentiable_op_has_a_torch_function_or_a_reason():
    missing = [n for n in DIFFERENTIABLE if n not in TORCH and n not in NO_TORCH]
    assert not missing, f"add these ops to TORCH (or NO_TORCH, with the reason) in tests/training/torch_equivalents.py: {missing}"
    stale = sorted((set(TORCH) | set(NO_TORCH)) - set(DIFFERENTIABLE))
    assert not stale, f"not differentiable ops (any more): {stale}"
    for op, note in NOT_COMPARABLE:
        assert note in [s.note for s in samples_of(op)], f"NOT_COMPARABLE names no sample of {op}: {note!r}"


def _cases():
    for p in grad_cases():
        name, idx = p.values
        if name in TORCH and (name, samples_of(name)[idx].note) not in NOT_COMPARABLE:
            yield p


def _rule_gradients(name, xs, attrs, gvals):
    """The rule's gradient per input (None where it gives none), on the interpreter."""
    b = GraphBuilder(f"grad_{name}")
    ins = [b.input(f"x{i}", TensorType.of(a)) for i, a in enumerate(xs)]
    outs = b.emit(name, ins, attrs)
    node = b.nodes[-1]
    g_inputs = [b.input(f"g{j}", v.type) for j, (v, gv) in enumerate(zip(outs, gvals)) if gv is not None]
    with b:
        it = iter(Tensor(v) for v in g_inputs)
        gt = [next(it) if gv is not None else None for gv in gvals]
        out_t = [Tensor(v) for v in outs]
        grads = REGISTRY[name].grad(gt[0] if len(outs) == 1 else tuple(gt), *[Tensor(v) for v in ins],
                                    out=out_t[0] if len(outs) == 1 else tuple(out_t), **node.attrs)
    wanted = [i for i, gr in enumerate(grads) if gr is not None]
    result = [None] * len(xs)
    if wanted:
        computed = run_graph(b.build([grads[i].value for i in wanted]), *xs, *[gv for gv in gvals if gv is not None])
        for i, arr in zip(wanted, computed):
            result[i] = arr
    return result


@pytest.mark.parametrize("name,idx", list(_cases()))
def test_gradient_matches_torch_autograd(name, idx):
    sample = samples_of(name)[idx]
    xs = [_to64(a) for a in sample.inputs]
    rng = np.random.default_rng(1)
    b = GraphBuilder("types")
    out_types = [v.type for v in b.emit(name, [b.input(f"x{i}", TensorType.of(a)) for i, a in enumerate(xs)], sample.attrs)]
    attrs = b.nodes[-1].attrs
    gvals = [rng.standard_normal(t.shape).astype(t.np_dtype) if t.np_dtype.kind == "f" else None for t in out_types]
    ours = _rule_gradients(name, xs, attrs, gvals)
    tensors = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in xs]
    result = TORCH[name](*tensors, **attrs)
    results = list(result) if isinstance(result, (tuple, list)) else [result]
    assert len(results) == len(out_types), f"{name}: torch function gives {len(results)} outputs, the op {len(out_types)}"
    objective = sum((r * torch.from_numpy(gv).to(r.dtype)).sum() for r, gv in zip(results, gvals) if gv is not None)
    floats = [i for i, t in enumerate(tensors) if t.requires_grad]
    if not isinstance(objective, torch.Tensor) or not objective.requires_grad:  # nothing differentiable reached the outputs (e.g. a float -> int cast)
        assert all(ours[i] is None or not np.any(ours[i]) for i in floats), f"{name}: rule gives a gradient torch does not"
        return
    theirs = torch.autograd.grad(objective, [tensors[i] for i in floats], allow_unused=True)
    for i, t in zip(floats, theirs):
        expected = np.zeros(xs[i].shape) if t is None else t.detach().numpy().astype(np.float64)
        if ours[i] is None:
            assert not np.any(expected), f"{name}: no gradient rule for input {i}, but torch's gradient is not zero"
            continue
        if i in sample.no_grad_check:  # undefined at this point (a kink): finite differences skip it too
            continue
        np.testing.assert_allclose(ours[i].astype(np.float64), expected, rtol=1e-6, atol=1e-7, equal_nan=True,
                                   err_msg=f"{name} ({sample.note or idx}): gradient of input {i}")
