"""What the -O2 pipeline fuses in real models (HF configs, random weights), torch and ONNX paths.

* BERT: every attention block is one fused[attention] kernel, no layer norm is left
  decomposed (each is one layer_norm kernel);
* GPT-2: every causal attention block fused;
* ResNet-50: every batch norm folded, every conv with its activation in one kernel;
* the seed CNN: both conv-relu-pool chains one kernel each.
Numerics of the compiled models against PyTorch are checked in test_hf_models.py.
"""
from __future__ import annotations

from collections import Counter

import pytest

import graphc
from graphc.examples import hf_models
from graphc.passes.pipeline import optimize

DECOMPOSED_LAYER_NORM = {"mean", "var", "rsqrt", "sqrt"}


def _optimized(name: str, path: str, small: bool, tmp_path):
    module, inputs = hf_models.build(name, small=small)
    if path == "torch":
        graph = graphc.from_torch(module, tuple(inputs.values()))
    else:
        graph = graphc.from_onnx(hf_models.export_onnx(module, inputs, str(tmp_path / f"{name}.onnx")))
    optimized, report = optimize(graph, 2, log=lambda s: None)
    return graph, optimized, report, module


def _kinds(graph) -> Counter:
    return Counter(n.kind if n.op == "fused" else n.op for n in graph.compute_nodes())


def _all_ops(graph) -> Counter:
    return Counter(n.op for n in graph.walk() if n.op not in ("const", "fused"))


def check_bert(optimized, layers: int):
    kinds, ops = _kinds(optimized), _all_ops(optimized)
    assert kinds["attention"] == layers
    assert ops["layer_norm"] == 2 * layers + 1  # two per layer + the embeddings'
    assert not DECOMPOSED_LAYER_NORM & set(ops), ops
    assert ops["softmax"] == 0  # every softmax is inside an attention kernel


def check_gpt2(optimized, layers: int):
    kinds = _kinds(optimized)
    assert kinds["attention"] == layers
    causal = [n.body.nodes[-1].attrs["causal"] for n in optimized.nodes if n.op == "fused" and n.kind == "attention"]
    masked = [len(n.inputs) == 4 for n in optimized.nodes if n.op == "fused" and n.kind == "attention"]
    assert all(c or m for c, m in zip(causal, masked)) and len(causal) == layers
    assert _all_ops(optimized)["softmax"] == 0


def check_resnet(graph, optimized, convs: int):
    ops = _all_ops(optimized)
    assert ops["batch_norm"] == 0 and ops["conv2d"] == convs
    # every relu is computed in the same kernel as the conv feeding it
    relus = 0
    for node in optimized.compute_nodes():
        assert node.op != "relu", "a relu left as its own kernel"
        if node.op == "fused":
            body_ops = [n.op for n in node.body.nodes]
            relus += body_ops.count("relu")
            assert "relu" not in body_ops or "conv2d" in body_ops, body_ops
    assert relus == ops["relu"] > 0


@pytest.mark.parametrize("path", ["torch", "onnx"])
def test_small_bert_fusion(path, tmp_path):
    _, optimized, _, _ = _optimized("bert", path, True, tmp_path)
    check_bert(optimized, 2)


@pytest.mark.parametrize("path", ["torch", "onnx"])
def test_small_gpt2_fusion(path, tmp_path):
    _, optimized, _, _ = _optimized("gpt2", path, True, tmp_path)
    check_gpt2(optimized, 2)


@pytest.mark.parametrize("path", ["torch", "onnx"])
def test_small_resnet_fusion(path, tmp_path):
    graph, optimized, report, _ = _optimized("resnet", path, True, tmp_path)
    check_resnet(graph, optimized, 17)
    assert report.rewrites.reasons("fuse_conv_pool") == [
        "overlapping 3x3/2 pool windows: fusing recomputes 50% of the conv rows (118 MFLOP, ~1.18 ms) "
        "to save 6.4 MB of traffic (~0.32 ms): does not pay"
    ]


@pytest.mark.slow
@pytest.mark.parametrize("name,path", [(n, p) for n in ("bert", "gpt2", "resnet") for p in ("torch", "onnx")])
def test_full_size_fusion(name, path, tmp_path):
    graph, optimized, _, _ = _optimized(name, path, False, tmp_path)
    if name == "bert":
        check_bert(optimized, 12)
    elif name == "gpt2":
        check_gpt2(optimized, 12)
    else:
        check_resnet(graph, optimized, 53)
