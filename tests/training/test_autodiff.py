"""passes/autodiff.py: reverse mode over graphc IR, checked against torch.autograd and finite differences."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc
from graphc import nn as gnn
from graphc.passes.autodiff import AutodiffError, differentiable_inputs, grad
from graphc.passes.pipeline import optimize
from graphc.printer import parse_graph
from graphc.runtime.interpreter import run_graph
from tests.conftest import compile_and_run


def _run(graph, *inputs):
    return [np.asarray(a) for a in run_graph(graph, *inputs)]


def test_fan_out_and_broadcasting_match_torch():
    # x is used three times (fan-out); b [4] broadcasts against [3, 4]
    g = parse_graph("""graph @f(%x: f32[3,4], %b: f32[4]) {
      %0: f32[3,4] = mul(%x, %x)
      %1: f32[3,4] = add(%0, %b)
      %2: f32[3,4] = tanh(%1)
      %3: f32[3,4] = mul(%2, %x)
      %4: f32[] = sum(%3) {axes=none, keepdims=false}
      return %4
    }""")
    rng = np.random.default_rng(0)
    x, b = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    loss, gx, gb = _run(grad(g, wrt=["x", "b"]), x, b)
    tx, tb = torch.tensor(x, requires_grad=True), torch.tensor(b, requires_grad=True)
    tl = (torch.tanh(tx * tx + tb) * tx).sum()
    tl.backward()
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-6)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gb, tb.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert gb.shape == (4,)


def test_integer_inputs_and_constants_get_no_gradient():
    g = parse_graph("""graph @f(%x: f32[5,3], %i: i64[2], %w: f32[3]) {
      %0: f32[2,3] = gather(%x, %i) {axis=0}
      %1: f32[2,3] = mul(%0, %w)
      %2: f32[] = sum(%1) {axes=none, keepdims=false}
      return %2
    }""")
    assert differentiable_inputs(g) == ["x", "w"]
    with pytest.raises(AutodiffError, match="input 'i'.*i64"):
        grad(g, wrt=["i"])
    with pytest.raises(AutodiffError, match="no input named 'y'.*x, i, w"):
        grad(g, wrt=["y"])
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    idx = np.array([4, 4])  # the same row twice: its gradient accumulates
    _, gx = _run(grad(g, wrt=["x"]), x, idx, w)
    expected = np.zeros_like(x)
    expected[4] = 2 * w
    np.testing.assert_allclose(gx, expected, rtol=1e-6)


def test_stop_gradient_blocks_and_disappears():
    g = parse_graph("""graph @f(%x: f32[4]) {
      %0: f32[4] = stop_gradient(%x)
      %1: f32[4] = mul(%0, %x)
      %2: f32[] = sum(%1) {axes=none, keepdims=false}
      return %2
    }""")
    x = np.arange(4, dtype=np.float32)
    out = grad(g, wrt=["x"])
    assert "stop_gradient" not in {n.op for n in out.nodes}
    np.testing.assert_allclose(_run(out, x)[1], x)  # d/dx (c * x) with c = x held constant


def test_the_loss_must_be_a_float_scalar():
    g = parse_graph("""graph @f(%x: f32[4]) {
      %0: f32[4] = relu(%x)
      return %0
    }""")
    with pytest.raises(AutodiffError, match="0-d float"):
        grad(g, wrt=["x"])


def test_gradient_through_fused_groups_equals_unfused():
    # a conv-relu-pool block fused by the pipeline, then differentiated: same gradients as the plain graph
    from graphc.examples import seeds

    rng = np.random.default_rng(2)
    w = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)

    def f(x, w_):
        y = gnn.max_pool2d(gnn.relu(gnn.conv2d(x, w_, padding=1)), 2)
        return (y * y).sum()

    x = seeds.random_input((2, 1, 8, 8), seed=3)
    plain = graphc.trace(f, x, w)
    fused, _ = optimize(plain, 2, log=lambda *a: None)
    assert any(n.op == "fused" for n in fused.nodes), f"nothing fused:\n{fused}"
    a, b = _run(grad(plain, wrt=[1]), x, w), _run(grad(fused, wrt=[1]), x, w)
    np.testing.assert_allclose(b[1], a[1], rtol=1e-5, atol=1e-5)
    tx, tw = torch.from_numpy(x), torch.tensor(w, requires_grad=True)
    y = torch.max_pool2d(torch.relu(torch.nn.functional.conv2d(tx, tw, padding=1)), 2)
    (y * y).sum().backward()
    np.testing.assert_allclose(a[1], tw.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_backward_graph_is_fused_and_compiles(x86):
    # the train step of a conv-relu-pool block: the backward convolutions become forward convs
    # (passes/backward_convs.py) and the whole step goes through fusion and codegen
    from graphc.examples import seeds

    rng = np.random.default_rng(4)
    w = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)

    def f(x, w_):
        y = gnn.max_pool2d(gnn.relu(gnn.conv2d(x, w_, padding=1)), 2)
        return (y * y).mean()

    x = seeds.random_input((2, 1, 8, 8), seed=5)
    g = grad(graphc.trace(f, x, w), wrt=[1])
    opt, report = optimize(g, 2, log=lambda *a: None)
    ops_left = {n.op for n in opt.nodes}
    assert "conv2d_grad_weight" not in ops_left and "conv2d_grad_input" not in ops_left, opt
    assert any(n.op == "fused" for n in opt.nodes)
    compiled = compile_and_run(g, [x, w], x86, log=lambda *a: None)
    for got, want in zip(compiled, _run(g, x, w)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
