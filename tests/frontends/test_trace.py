"""The tracing frontend: operators, indexing, methods, graphc.nn, parameters, outputs and errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import graphc
from graphc import nn as gnn
from graphc import ops
from graphc.errors import IRError
from graphc.ir import TensorType

RNG = np.random.default_rng(0)


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def run_both(fn, *inputs, rtol=1e-5, atol=1e-5):
    """Trace fn, run it on the interpreter and compiled for x86; both must agree; returns the outputs."""
    g = graphc.trace(fn, *inputs)
    ref = graphc.run_graph(g, *inputs)
    got = graphc.compile(g, opt_level=0).session().run(*inputs)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    return g, ref


def test_arithmetic_operators_and_scalars():
    x, y = f32(3, 4), f32(4)

    def fn(x, y):
        return (x + y) * 2.0 - y / 3.0, 1.0 - x, 2.0 / (x * x + 1.0), -x, abs(x), (x * x + 1.0) ** 0.5

    g, (a, b, c, d, e, f) = run_both(fn, x, y)
    np.testing.assert_allclose(a, (x + y) * 2 - y / 3, rtol=1e-6)
    np.testing.assert_allclose(b, 1 - x, rtol=1e-6)
    np.testing.assert_allclose(c, 2 / (x * x + 1), rtol=1e-6)
    np.testing.assert_allclose(d, -x)
    np.testing.assert_allclose(e, np.abs(x))
    np.testing.assert_allclose(f, np.sqrt(x * x + 1), rtol=1e-6)
    assert [v.name for v in g.inputs] == ["x", "y"]


def test_matmul_operator_and_comparisons():
    a, b = f32(2, 3, 4), f32(4, 5)

    def fn(a, b):
        m = a @ b
        return m, ops.where(m > 0.0, m, 0.0), (m <= 0.5).astype("f32"), m.eq(m), a.T

    _, (m, w, le, eq, t) = run_both(fn, a, b)
    np.testing.assert_allclose(m, a @ b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(w, np.where(a @ b > 0, a @ b, 0), rtol=1e-5, atol=1e-5)
    assert eq.dtype == np.bool_ and eq.all()
    np.testing.assert_array_equal(t, a.T)


@pytest.mark.parametrize(
    "index",
    [
        (1,),
        (slice(None), 2),
        (slice(1, None, 2),),
        (Ellipsis, -1),
        (None, 0, slice(None, None, -1)),
        (slice(None), None, slice(2, 4)),
        (-1, slice(None, None, -2), 1),
    ],
    ids=str,
)
def test_indexing_matches_numpy(index):
    x = f32(4, 6, 5)
    _, (out,) = run_both(lambda x: x[index], x)
    np.testing.assert_array_equal(out, x[index])


def test_shape_methods():
    x = f32(2, 3, 4)

    def fn(x):
        return (
            x.reshape(6, -1),
            x.view(-1),
            x.transpose(0, 2),
            x.permute(1, 0, 2),
            x.flatten(1),
            x.unsqueeze(1).squeeze(1),
            x.sum(axis=1),
            x.mean(axis=-1, keepdims=True),
            x.max(),
            x.softmax(-1),
        )

    _, outs = run_both(fn, x)
    expected = [
        x.reshape(6, 4), x.reshape(-1), x.transpose(2, 1, 0), x.transpose(1, 0, 2), x.reshape(2, 12), x,
        x.sum(1), x.mean(-1, keepdims=True), x.max(), None,
    ]
    for o, e in zip(outs, expected):
        if e is not None:
            np.testing.assert_allclose(o, e, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outs[-1], torch.softmax(torch.from_numpy(x), -1).numpy(), rtol=1e-5, atol=1e-6)


def test_nn_functions_match_torch():
    x = f32(2, 3, 8, 8)
    w, b = f32(4, 3, 3, 3), f32(4)
    gamma, beta, mean, var = f32(4), f32(4), f32(4), np.abs(f32(4)) + 0.5
    lw, lb = f32(8), f32(8)

    def fn(x):
        y = gnn.conv2d(x, w, b, stride=2, padding=1)
        y = gnn.batch_norm(y, mean, var, gamma, beta, eps=1e-5)
        y1 = gnn.max_pool2d(gnn.relu(y), 2)
        y2 = gnn.avg_pool2d(gnn.silu(y), 3, stride=1, padding=1)
        y3 = gnn.global_avg_pool2d(gnn.gelu(y, "tanh"))
        y4 = gnn.layer_norm(gnn.sigmoid(x), 8, lw, lb)
        y5 = gnn.log_softmax(gnn.tanh(x), dim=1)
        return y1, y2, y3, y4, y5

    _, outs = run_both(fn, x, rtol=1e-4, atol=1e-5)
    F = torch.nn.functional
    t = lambda a: torch.from_numpy(a)  # noqa: E731
    y = F.batch_norm(F.conv2d(t(x), t(w), t(b), stride=2, padding=1), t(mean), t(var), t(gamma), t(beta), eps=1e-5)
    ref = [
        F.max_pool2d(F.relu(y), 2),
        F.avg_pool2d(F.silu(y), 3, stride=1, padding=1),
        F.adaptive_avg_pool2d(F.gelu(y, approximate="tanh"), 1),
        F.layer_norm(torch.sigmoid(t(x)), (8,), t(lw), t(lb)),
        F.log_softmax(torch.tanh(t(x)), dim=1),
    ]
    for o, r in zip(outs, ref):
        np.testing.assert_allclose(o, r.numpy(), rtol=1e-4, atol=1e-5)


def test_attention_and_embedding_match_torch():
    ids = RNG.integers(0, 50, size=(2, 7)).astype(np.int64)
    table = f32(50, 16)
    wq, wk, wv, wo = (f32(16, 16) * 0.3 for _ in range(4))
    bq, bk, bv, bo = (f32(16) for _ in range(4))

    def fn(ids):
        h = gnn.embedding(ids, table)
        return gnn.multi_head_attention(h, wq, wk, wv, wo, num_heads=4, bq=bq, bk=bk, bv=bv, bo=bo, causal=True)

    _, (out,) = run_both(fn, ids, rtol=1e-4, atol=1e-5)
    mha = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.from_numpy(np.concatenate([wq, wk, wv])))
        mha.in_proj_bias.copy_(torch.from_numpy(np.concatenate([bq, bk, bv])))
        mha.out_proj.weight.copy_(torch.from_numpy(wo))
        mha.out_proj.bias.copy_(torch.from_numpy(bo))
        h = torch.from_numpy(table[ids])
        mask = torch.triu(torch.ones(7, 7, dtype=torch.bool), 1)
        ref, _ = mha(h, h, h, attn_mask=mask, need_weights=False)
    np.testing.assert_allclose(out, ref.numpy(), rtol=1e-4, atol=1e-5)


def test_parameters_named_and_lifted():
    w = graphc.param("layer.weight", f32(3, 4))
    x = f32(2, 4)
    g = graphc.trace(lambda x: gnn.linear(x, w) + gnn.linear(x, w), x)
    consts = [n for n in g.nodes if n.op == "const"]
    assert [c.outputs[0].name for c in consts] == ["layer.weight"]  # one constant, used twice
    assert "%layer.weight = const f32[3,4]" in str(g)
    lifted = graphc.trace(lambda x: gnn.linear(x, w), x, params_as_inputs=True)
    assert [v.name for v in lifted.inputs] == ["x", "layer.weight"]


def test_outputs_as_dict_and_input_specs():
    g = graphc.trace(lambda a, b: {"sum": a + b, "prod": a * b}, TensorType("f32", (3,)), ((3,), "f32"))
    assert g.output_names == ["sum", "prod"]
    assert [str(v.type) for v in g.inputs] == ["f32[3]", "f32[3]"]
    assert g.name == "lambda"


def test_trace_errors_are_clear():
    x = f32(3)
    with pytest.raises(IRError, match="no truth value"):
        graphc.trace(lambda x: x if x else x, x)
    with pytest.raises(IRError, match="iterating"):
        graphc.trace(lambda x: [t for t in x], x)
    with pytest.raises(IRError, match="must return graphc tensors"):
        graphc.trace(lambda x: 3, x)
    with pytest.raises(IRError, match="advanced"):
        graphc.trace(lambda x: x[np.array([0, 1])], x)
    with pytest.raises(IRError, match="out of range"):
        graphc.trace(lambda x: x[5], x)
    with pytest.raises(IRError, match="no graph is being built"):
        ops.relu(x)


def test_gelu_erf_form_and_scale_math():
    x = f32(5, 7)
    _, (out,) = run_both(lambda x: gnn.gelu(x) * (1 / math.sqrt(2.0)), x)
    np.testing.assert_allclose(out, torch.nn.functional.gelu(torch.from_numpy(x)).numpy() / math.sqrt(2), rtol=1e-5, atol=1e-6)
