"""Attention backward: the fused flash kernel (fused[attention_backward], issue 7) against the
previous decomposed gradient (the forward recomputed with graphc ops, softmax and matmul
backward: several kernels with [Sq, Sk] buffers), timed in interleaved rounds in one process.

    python -m benchmarks.attention_backward [--shape 1,12,512,64] [--causal] [--train bert,bert12] [--rounds 10]

Kernel level: a graph (q, k, v, out, g) -> (dq, dk, dv) built by the gradient rule of
scaled_dot_product_attention, with the rule as it is now ("flash") and with the decomposed
rule ("decomposed"), both compiled by the normal pipeline. Train step level: the same
toggle while building the train graph of the 2-layer BERT tagger (b4 h4 s16 d8) and of a
12-head s128 variant of it ("bert12": b2 h12 s128 d64, 1 layer).
"""
from __future__ import annotations

import argparse
import contextlib

import numpy as np

from benchmarks.harness import interleaved
from graphc.ops.attention import _decomposed_grad
from graphc.ops.registry import REGISTRY


@contextlib.contextmanager
def decomposed_gradient():
    """The attention gradient as it was before the fused backward op."""
    record = REGISTRY["scaled_dot_product_attention"]
    saved = record.grad
    record.grad = lambda g, *xs, out, **attrs: _decomposed_grad(g, *xs, **attrs)
    try:
        yield
    finally:
        record.grad = saved


def _grad_graph(shape, causal: bool):
    from graphc.ir import GraphBuilder, TensorType
    from graphc.tensor import Tensor

    b = GraphBuilder("attention_backward")
    t = TensorType("f32", shape)
    q, k, v, out, g = (Tensor(b.input(n, t)) for n in ("q", "k", "v", "out", "g"))
    with b:
        grads = REGISTRY["scaled_dot_product_attention"].grad(g, q, k, v, out=out, scale=None, causal=causal, softcap=0.0)
    return b.build([x.value for x in grads])


def kernel_sessions(shape, causal: bool):
    import graphc

    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
    out = REGISTRY["scaled_dot_product_attention"].ref(q, k, v, scale=None, causal=causal, softcap=0.0)
    g = rng.standard_normal(shape).astype(np.float32)
    args = (q, k, v, out, g)
    sessions = {}
    for name, ctx in (("decomposed", decomposed_gradient()), ("flash", contextlib.nullcontext())):
        with ctx:
            graph = _grad_graph(shape, causal)
        model = graphc.compile(graph, "x86", log=lambda *a: None, tuning=False)
        sessions[name] = model.session()
        print(f"{name}: {len(model.build.kernels)} kernels: {', '.join(n for k in model.build.kernels for n in k.notes)}")
    a, b = (sessions[n].run(*args) for n in ("decomposed", "flash"))
    for x, y in zip(a, b):
        np.testing.assert_allclose(y, x, rtol=1e-3, atol=1e-4)
    return {n: (lambda s=s: s.run(*args)) for n, s in sessions.items()}


def _bert12(seed: int = 0):
    from graphc.examples.train_models import bert_tagger

    return bert_tagger(seed, hidden=768, layers=1, heads=12, intermediate=1024, seq=128)


def train_sessions(model: str):
    import torch

    from graphc.examples.train_models import BERT_CLASSES, BERT_VOCAB, CASES, OPTIMIZERS, batches
    from graphc.training.compile import compile_train_step

    case = CASES["bert"]
    spec = OPTIMIZERS["adamw"][0]
    if model == "bert":
        make, ((x, y),) = case.make, batches(case, 1)
    else:
        rng = np.random.default_rng(0)
        make, x, y = _bert12, rng.integers(0, BERT_VOCAB, (2, 128)), rng.integers(0, BERT_CLASSES, (2, 128))
    fns = {}
    for name, ctx in (("decomposed", decomposed_gradient()), ("flash", contextlib.nullcontext())):
        with ctx:
            step = compile_train_step(make(), loss=case.loss, optimizer=spec, example_inputs=(torch.from_numpy(x),), log=lambda *a: None)
        kernels = [k for k in step.build.kernels if not k.name.startswith("eval_")]
        print(f"{model} {name}: {len(kernels)} step kernels")
        sess = step.session()
        fns[name] = lambda s=sess: s.step(x, y)
    return fns


def _report(title, stats):
    print(title)
    for k, st in stats.items():
        print(f"  {k:10} median {st['median_ms']:9.3f} ms  best {st['min_ms']:9.3f} ms")
    d, f = stats["decomposed"], stats["flash"]
    print(f"  decomposed / flash: median {d['median_ms'] / f['median_ms']:.2f}x, best {d['min_ms'] / f['min_ms']:.2f}x")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="1,12,512,64")
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--train", default="bert,bert12", help="train steps to time ('' for none)")
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args(argv)
    shape = tuple(int(s) for s in args.shape.split(","))
    _report(f"attention backward {shape} causal={args.causal}", interleaved(kernel_sessions(shape, args.causal), rounds=args.rounds))
    for model in filter(None, args.train.split(",")):
        _report(f"train step {model}", interleaved(train_sessions(model), rounds=args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
