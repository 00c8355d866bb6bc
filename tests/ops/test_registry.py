"""Every op record is complete, and its inference agrees with its numpy reference on every sample."""
from __future__ import annotations

import numpy as np
import pytest

from graphc import dtypes
from graphc.ir import GraphBuilder, TensorType
from graphc.ops.registry import FUSION_KINDS, REGISTRY
from graphc.runtime.interpreter import eval_node
from tests.conftest import assert_roundtrip

OPS = sorted(REGISTRY)


def samples_of(name):
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    return REGISTRY[name].samples(rng)


def cases():
    for name in OPS:
        for i, s in enumerate(samples_of(name)):
            yield pytest.param(name, i, id=f"{name}-{i}" + (f"-{s.note.replace(' ', '_')}" if s.note else ""))


def one_node_graph(name, sample):
    b = GraphBuilder(name)
    ins = [b.input(f"x{i}", TensorType.of(np.asarray(a))) for i, a in enumerate(sample.inputs)]
    outs = b.emit(name, ins, sample.attrs)
    return b.build(outs)


@pytest.mark.parametrize("name", OPS)
def test_record_is_complete(name):
    op = REGISTRY[name]
    assert callable(op.infer) and callable(op.ref) and callable(op.lower), name
    assert op.fusion in FUSION_KINDS
    if op.differentiable:
        assert callable(op.grad), f"{name} is differentiable but has no gradient rule"
    else:
        assert op.grad is None
    samples = samples_of(name)
    assert samples, f"{name} has no samples"
    float_sample = any(np.asarray(a).dtype.kind == "f" for s in samples for a in s.inputs)
    if op.differentiable:
        assert float_sample, f"{name}: a differentiable op needs a float sample for its gradient check"


@pytest.mark.parametrize("name,idx", list(cases()))
def test_inference_matches_reference(name, idx):
    sample = samples_of(name)[idx]
    g = one_node_graph(name, sample)
    node = g.nodes[-1]
    result = REGISTRY[name].ref(*sample.inputs, **node.attrs)
    results = list(result) if isinstance(result, (tuple, list)) else [result]
    assert len(results) == len(node.outputs)
    for r, v in zip(results, node.outputs):
        r = np.asarray(r)
        assert tuple(r.shape) == v.shape, f"{name}: reference shape {r.shape}, inferred {v.type}"
        assert dtypes.from_numpy(r.dtype) == v.dtype, f"{name}: reference dtype {r.dtype}, inferred {v.type}"
    eval_node(node, list(sample.inputs))
    assert_roundtrip(g)
