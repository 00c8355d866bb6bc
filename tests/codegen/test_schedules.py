"""Every kernel gets a real CPU schedule: parallel and vectorized where the shapes allow,
the blocked micro-kernel rules for conv2d / dense / matmul, and identical kernels compiled once."""
from __future__ import annotations

import numpy as np
import pytest
from tvm import tirx

import graphc
from graphc import ops
from graphc.codegen.module import build_relax_module
from graphc.examples import seeds
from graphc.ir import GraphBuilder, TensorType
from graphc.passes.pipeline import optimize
from graphc.tensor import Tensor


def _kernels(graph, target):
    graph, _ = optimize(graph, 2)
    build = build_relax_module(graph, target)
    funcs = {gv.name_hint: f for gv, f in build.mod.functions.items() if isinstance(f, tirx.PrimFunc)}
    return build, funcs


def _loop_kinds(func) -> set[str]:
    text = func.script()
    return {kind for kind in ("parallel", "vectorized", "unroll") if f"T.{kind}(" in text}


@pytest.fixture(scope="module")
def cnn_graph():
    model = seeds.torch_cnn(0)
    return graphc.trace(seeds.graphc_cnn(seeds.state_dict_numpy(model)), seeds.random_input(seeds.CNN_INPUT))


def test_seed_cnn_kernels_are_parallel_and_vectorized(cnn_graph, x86):
    build, funcs = _kernels(cnn_graph, x86)
    notes = {k.name: k.notes for k in build.kernels}
    for name, f in funcs.items():
        out_elems = int(np.prod([int(d) for d in f.params[-1].shape])) if f.params[-1].shape else 1
        kinds = _loop_kinds(f)
        if out_elems >= 4096:
            assert "parallel" in kinds, f"{name} ({out_elems} outputs) is not parallel"
        assert "vectorized" in kinds or out_elems < 2, f"{name} is not vectorized"
    all_notes = [n for ns in notes.values() for n in ns]
    assert [n for n in all_notes if n.startswith("conv2d")] == ["conv2d: blocked"] * 2, all_notes
    assert [n for n in all_notes if n.startswith("dense")] == ["dense: blocked"], all_notes
    # conv-bias-relu-pool twice, then the classifier with its bias: three kernels
    assert sorted(k.label for k in build.kernels) == ["fused[conv_bias_relu_pool]"] * 2 + ["fused[dense_epilogue]"]


def test_identical_kernels_are_compiled_once(x86):
    b = GraphBuilder("rep")
    x = Tensor(b.input("x", TensorType("f32", (16, 64))))
    with b:
        h = x
        for i in range(4):
            h = ops.tanh(ops.linear(h, graphc.param(f"w{i}", np.full((64, 64), 0.01 * (i + 1), np.float32))))
    g = b.build([h.value])
    build, funcs = _kernels(g, x86)
    assert len(funcs) == 1  # one dense+tanh kernel, used by all 4 layers
    assert [k.uses for k in build.kernels] == [4]
    xin = np.random.default_rng(0).standard_normal((16, 64)).astype(np.float32)
    np.testing.assert_allclose(graphc.compile(g).session().run(xin)[0], graphc.run_graph(g, xin)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("m,k,n", [(64, 784, 128), (1, 768, 3072), (128, 64, 10), (7, 33, 19)])
def test_dense_rule_shapes(m, k, n, x86):
    b = GraphBuilder("d")
    x = Tensor(b.input("x", TensorType("f32", (m, k))))
    w = b.input("w", TensorType("f32", (n, k)))
    with b:
        y = ops.relu(ops.linear(x, Tensor(w)) + np.linspace(-1, 1, n, dtype=np.float32))
    g = b.build([y.value])
    rng = np.random.default_rng(0)
    xv, wv = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((n, k)).astype(np.float32)
    got = graphc.compile(g, opt_level=0).session().run(xv, wv)[0]
    np.testing.assert_allclose(got, graphc.run_graph(g, xv, wv)[0], rtol=1e-4, atol=1e-4)
