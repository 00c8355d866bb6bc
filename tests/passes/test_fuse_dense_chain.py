"""Back-to-back GEMM fusion (passes/fuse_dense_chain.py) and its x86 rule (codegen cpu_chain):
which chains fuse and which do not, the fused graph computing the same values as before
(interpreter) and the compiled kernel matching the interpreter and PyTorch."""
from __future__ import annotations

import numpy as np
import pytest

import graphc
import graphc.nn as gnn
from graphc.ir import GraphBuilder, TensorType
from graphc.passes.fuse_dense_chain import fuse_dense_chains, plan_chains
from graphc.passes.layout import layout_for_target
from graphc.passes.pipeline import optimize
from graphc.tensor import Tensor
from graphc.verify import verify

RNG = np.random.default_rng(0)


def _rand(*shape, scale=0.1):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def _mlp(rows=64, k=784, hidden=128, out=10, softmax=True, act=gnn.relu, branch=False):
    w1, b1, w2, b2 = _rand(hidden, k), _rand(hidden), _rand(out, hidden), _rand(out)
    b = GraphBuilder("mlp")
    x = Tensor(b.input("x", TensorType("f32", (rows, k))))
    with b:
        h = act(gnn.linear(x, graphc.param("w1", w1), graphc.param("b1", b1)))
        y = gnn.linear(h, graphc.param("w2", w2), graphc.param("b2", b2))
        if softmax:
            y = gnn.softmax(y, dim=-1)
        outs = [y, h] if branch else [y]
    return b.build([t.value for t in outs]), (w1, b1, w2, b2)


def _packed(graph, x86):
    g, _ = optimize(graph, 2)
    return layout_for_target(g, x86)


def _kernels(cm):
    return [(k.name, k.notes) for k in cm.build.kernels]


@pytest.mark.parametrize("softmax", [True, False], ids=["softmax-head", "bias-head"])
def test_mlp_head_becomes_one_chain_kernel(softmax, x86):
    import torch

    g, (w1, b1, w2, b2) = _mlp(softmax=softmax)
    x = _rand(64, 784, scale=1.0)
    packed = _packed(g, x86)
    assert [len(c) for c in plan_chains(packed)] == [3 if softmax else 2]
    fused = fuse_dense_chains(packed)
    verify(fused)
    assert [n.attrs["kind"] for n in fused.compute_nodes() if n.op == "fused"] == ["dense_chain"]
    np.testing.assert_allclose(graphc.run_graph(fused, x)[0], graphc.run_graph(packed, x)[0], rtol=1e-5, atol=1e-6)

    cm = graphc.compile(g, x86, log=lambda *a: None)
    assert _kernels(cm) == [("k0_dense_chain", ["gemm chain: 2 GEMMs per row tile"])]
    got = cm.session().run(x)[0]
    np.testing.assert_allclose(got, graphc.run_graph(g, x)[0], rtol=1e-4, atol=1e-5)
    t = torch.relu(torch.from_numpy(x) @ torch.from_numpy(w1).T + torch.from_numpy(b1)) @ torch.from_numpy(w2).T + torch.from_numpy(b2)
    want = torch.softmax(t, -1) if softmax else t
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "rows,k,hidden,out,act",
    [(30, 50, 40, 3, gnn.relu), (128, 64, 200, 16, gnn.gelu), (6, 33, 17, 1, gnn.tanh)],
    ids=["odd-sizes", "gelu-full-panel", "one-output"],
)
def test_chain_kernel_on_awkward_shapes(rows, k, hidden, out, act, x86):
    g, _ = _mlp(rows, k, hidden, out, act=act)
    x = _rand(rows, k, scale=1.0)
    cm = graphc.compile(g, x86, log=lambda *a: None)
    assert [name for name, _ in _kernels(cm)] == ["k0_dense_chain"]
    np.testing.assert_allclose(cm.session().run(x)[0], graphc.run_graph(g, x)[0], rtol=1e-4, atol=1e-5)


def test_one_row_keeps_each_gemm_parallel_over_columns(x86):
    """A single row cannot be shared out by row tiles: the rule declines (says why) and each GEMM
    gets its own loop nest inside the one kernel; the result is unchanged."""
    g, _ = _mlp(rows=1)
    x = _rand(1, 784, scale=1.0)
    cm = graphc.compile(g, x86, log=lambda *a: None)
    (name, notes), = _kernels(cm)
    assert name == "k0_dense_chain" and notes[0].startswith("gemm chain: declined (Decline: 1 row tile(s)"), notes
    np.testing.assert_allclose(cm.session().run(x)[0], graphc.run_graph(g, x)[0], rtol=1e-4, atol=1e-5)


def test_what_does_not_chain(x86):
    wide, _ = _mlp(out=100)  # the second layer spans several weight panels: its own parallel kernel
    assert plan_chains(_packed(wide, x86)) == []
    shared, _ = _mlp(branch=True)  # the hidden activation is also an output: it must reach memory
    assert plan_chains(_packed(shared, x86)) == []
    big, _ = _mlp(k=64, hidden=2048)  # a row tile's hidden activations would not stay in L1
    assert plan_chains(_packed(big, x86)) == []
    g, _ = _mlp()
    assert plan_chains(optimize(g, 2)[0]) == []  # before the layout pass: no packed GEMMs to chain
