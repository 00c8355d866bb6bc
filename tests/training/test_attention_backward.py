"""Attention backward as one fused flash kernel (issue 7).

* the op's float64 reference equals torch.autograd of F.scaled_dot_product_attention and the
  previous decomposed gradient (softmax + matmul backward in graphc ops);
* the CPU template (graphc/codegen/kernels/attention_backward_cpu.py), built on its own, equals
  the reference over the op's samples and block-boundary shapes (lanes=4: the ARM shape);
* the pass wraps the op into fused[attention_backward] (structure, numerics before vs after);
* the BERT train step compiles the attention backward to the template and keeps no [.., S, S]
  value for attention (the softmax/score buffers of the decomposed gradient are gone).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import tvm
from tvm import tirx

from graphc.codegen.kernels.attention_backward_cpu import flash_attention_backward_cpu
from graphc.codegen.kernels.attention_cpu import AttentionShapes
from graphc.ir import GraphBuilder, TensorType
from graphc.ops.attention import _decomposed_grad
from graphc.ops.registry import REGISTRY
from graphc.runtime.interpreter import run_graph
from graphc.targets import resolve
from graphc.tensor import Tensor
from tests.ops.test_registry import samples_of

OP = "scaled_dot_product_attention_backward"


def _ref(q, k, v, mask, out, g, scale, causal):
    return REGISTRY[OP].ref(q, k, v, *mask, out, g, scale=scale, causal=causal)


def _forward(q, k, v, mask, scale, causal):
    return REGISTRY["scaled_dot_product_attention"].ref(q, k, v, *mask, scale=scale, causal=causal, softcap=0.0)


def _cases():
    for i, s in enumerate(samples_of(OP)):
        *qkv_mask, out, g = s.inputs
        yield pytest.param(qkv_mask[:3], qkv_mask[3:], s.attrs.get("scale"), s.attrs.get("causal", False), id=f"sample{i}-{s.note}")
    rng = np.random.default_rng(0)

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    pad = np.zeros((2, 1, 1, 45), np.float32)
    pad[..., 40:] = -np.inf
    yield pytest.param([r(2, 2, 70, 16), r(2, 2, 45, 16), r(2, 2, 45, 24)], [pad], None, False, id="ragged-blocks-padding-mask")
    yield pytest.param([r(1, 2, 7, 8), r(1, 2, 11, 8), r(1, 2, 11, 8)], [], None, False, id="sk-below-one-block")
    yield pytest.param([r(1, 3, 100, 8), r(1, 3, 100, 8), r(1, 3, 100, 8)], [], 0.2, True, id="causal-many-blocks")
    yield pytest.param([r(1, 2, 130, 64), r(1, 2, 77, 64), r(1, 2, 77, 64)], [], None, True, id="causal-sq-gt-sk-ragged")
    yield pytest.param([r(1, 2, 128, 64), r(1, 2, 128, 64), r(1, 2, 128, 64)], [], None, False, id="d64-s128")
    keep = rng.random((1, 1, 33, 50)) > 0.4
    keep[0, 0, 5] = False  # a fully masked row
    yield pytest.param([r(2, 1, 33, 16), r(1, 3, 50, 16), r(2, 3, 50, 8)], [keep], None, False, id="broadcast-batch-bool-mask")


def _run_template(q, k, v, mask, out, g, scale, causal, lanes=16):
    kt = (*k.shape[:-2], k.shape[-1], k.shape[-2])
    sh = AttentionShapes(q.shape, kt, v.shape, mask[0].shape if mask else None,
                         ("bool" if mask[0].dtype == bool else "f32") if mask else None, out.shape)
    func = flash_attention_backward_cpu(sh, scale if scale is not None else 1 / math.sqrt(q.shape[-1]), causal, lanes=lanes)
    lib = tirx.build(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}), resolve("x86").tvm_target())
    dev = tvm.cpu()
    batch = out.shape[:-2]
    grads = [tvm.runtime.tensor(np.full(s, np.nan, np.float32), dev)
             for s in ((*batch, *q.shape[-2:]), (*batch, *k.shape[-2:]), (*batch, *v.shape[-2:]))]
    lib["main"](*[tvm.runtime.tensor(a, dev) for a in (q, k, v, *mask, out, g)], *grads)
    return [t.numpy() for t in grads]


@pytest.mark.parametrize("qkv,mask,scale,causal", list(_cases()))
@pytest.mark.parametrize("lanes", [16, 4])
def test_template_matches_reference(qkv, mask, scale, causal, lanes):
    q, k, v = qkv
    out = _forward(q, k, v, mask, scale, causal)
    g = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    expected = _ref(q, k, v, mask, out, g, scale, causal)
    got = _run_template(q, k, v, mask, out, g, scale, causal, lanes)
    for name, a, e in zip(("dq", "dk", "dv"), got, expected):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=2e-5, err_msg=name)


def _unbroadcast(a, shape):
    lead = a.ndim - len(shape)
    a = a.sum(axis=tuple(range(lead)))
    return a.sum(axis=tuple(i for i, d in enumerate(shape) if d == 1 and a.shape[i] != 1), keepdims=True)


@pytest.mark.parametrize("qkv,mask,scale,causal", list(_cases())[:7])
def test_reference_matches_torch_autograd(qkv, mask, scale, causal):
    q, k, v = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in qkv)
    is_causal = causal
    m = torch.tensor(mask[0]) if mask else None
    if m is not None and m.dtype != torch.bool:
        m = m.double()
    if m is not None and causal:  # torch takes one or the other: fold causal into the (bool) mask
        m, causal = m & torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril(), False
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m, is_causal=causal, scale=scale)
    g = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(torch.tensor(g))
    ref = _ref(*qkv, mask, _forward(*qkv, mask, scale, is_causal).astype(np.float32), g.astype(np.float32), scale, is_causal)
    for name, t, r in zip(("dq", "dk", "dv"), (q, k, v), ref):
        expected = t.grad.numpy()  # (torch's softmax also gives a fully masked row zeros)
        np.testing.assert_allclose(_unbroadcast(r.astype(np.float64), t.shape), expected, rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("idx", range(len(samples_of(OP))))
def test_gradient_rule_matches_decomposed_gradient(idx):
    """The new rule (the fused op + unbroadcast) against the previous decomposed one, on the interpreter."""
    s = samples_of(OP)[idx]
    *inputs, out, g = s.inputs
    attrs = {"scale": s.attrs.get("scale"), "causal": s.attrs.get("causal", False), "softcap": 0.0}
    results = []
    for rule in (REGISTRY["scaled_dot_product_attention"].grad, lambda g_, *xs, out, **a: _decomposed_grad(g_, *xs, **a)):
        b = GraphBuilder("grad")
        ins = [b.input(f"x{i}", TensorType.of(a)) for i, a in enumerate((*inputs, out, g))]
        with b:
            ts = [Tensor(v) for v in ins]
            grads = rule(ts[-1], *ts[:-2], out=ts[-2], **attrs)[:3]
        results.append(run_graph(b.build([t.value for t in grads]), *inputs, out, g))
    for name, new, old in zip(("dq", "dk", "dv"), *results):
        np.testing.assert_allclose(new, old, rtol=1e-4, atol=1e-5, err_msg=name)


def test_pass_wraps_backward_op_and_keeps_numerics():
    from graphc.passes.pipeline import run_pipeline

    s = samples_of(OP)[3]  # bool mask with a fully masked row
    b = GraphBuilder("bwd")
    ins = [b.input(f"x{i}", TensorType.of(a)) for i, a in enumerate(s.inputs)]
    outs = b.emit(OP, ins, s.attrs)
    graph = b.build(outs)
    fused, _ = run_pipeline(graph, ["fuse_attention"], verify_numerics=True, log=lambda *a: None)
    (node,) = [n for n in fused.nodes if n.op != "const"]
    assert node.op == "fused" and node.kind == "attention_backward"
    assert [n.op for n in node.body.nodes if n.op != "const"] == [OP]
    for a, e in zip(run_graph(fused, *s.inputs), run_graph(graph, *s.inputs)):
        np.testing.assert_array_equal(a, e)


@pytest.fixture(scope="module")
def bert_step():
    from graphc.examples.train_models import CASES, batches
    from graphc.training.compile import compile_train_step

    case = CASES["bert"]
    (x, _y), = batches(case, 1)
    return compile_train_step(case.make(), loss=case.loss, optimizer="adamw", example_inputs=(torch.from_numpy(x),), log=lambda *a: None)


def test_bert_train_step_uses_the_flash_backward_kernel(bert_step):
    notes = [n for k in bert_step.build.kernels if not k.name.startswith("eval_") for n in k.notes]
    assert any(n.startswith("attention backward: flash") for n in notes), notes
    graph = bert_step.step_graph
    kinds = [n.kind for n in graph.nodes if n.op == "fused"]
    assert kinds.count("attention_backward") == 2 and kinds.count("attention") == 2, kinds  # two layers
    seq = 16
    square = [n.describe() for n in graph.nodes if n.op != "const" for v in n.outputs if v.shape[-2:] == (seq, seq)]
    assert not square, f"[.., S, S] values left in the train step: {square}"
    assert not [n for n in graph.nodes if n.op in ("softmax", "scaled_dot_product_attention_backward")]
