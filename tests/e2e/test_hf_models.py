"""Hugging Face models (configs with random weights) through the PyTorch and the ONNX frontends,
compiled for x86, against PyTorch eager.

The small variants (2 layers / one block per ResNet stage) run in the fast suite; the full
sizes (BERT-base with a padding mask, GPT-2 small, ResNet-50) are marked slow: one import,
one compile, one run, one comparison each.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("transformers")

import graphc  # noqa: E402
from graphc.examples import hf_models  # noqa: E402

TOL = 1e-4  # max abs diff, relative to the output scale
QUIET = {"log": lambda *a, **k: None}


def _check(outputs, expected):
    assert len(outputs) == len(expected)
    for i, (a, e) in enumerate(zip(outputs, expected)):
        assert a.shape == e.shape, f"output {i}: shape {a.shape} != {e.shape}"
        scale = max(1.0, float(np.max(np.abs(e))))
        diff = float(np.max(np.abs(a - e)))
        assert diff <= TOL * scale, f"output {i}: max abs diff {diff:.3g} > {TOL * scale:.3g}"


def _model(name: str, small: bool):
    module, inputs = hf_models.build(name, small=small)
    return module, inputs, hf_models.reference(module, inputs)


def _run_torch(name: str, small: bool) -> graphc.Graph:
    module, inputs, expected = _model(name, small)
    compiled = graphc.compile(module, target="x86", example_inputs=inputs, **QUIET)
    _check(compiled.session().run(**inputs), expected)
    return compiled.graph


def _run_onnx(name: str, small: bool, tmp_path) -> None:
    module, inputs, expected = _model(name, small)
    path = hf_models.export_onnx(module, inputs, str(tmp_path / f"{name}.onnx"))
    compiled = graphc.compile(graphc.from_onnx(path), target="x86", **QUIET)
    _check(compiled.session().run(**inputs), expected)


# ---------------------------------------------------------------------------------------
# small models: the importers' structure, and numerics
# ---------------------------------------------------------------------------------------
def test_small_bert_torch():
    module, inputs, expected = _model("bert", small=True)
    g = graphc.from_torch(module, inputs)
    assert [v.name for v in g.inputs] == ["input_ids", "attention_mask"]
    assert g.output_names == ["last_hidden_state", "pooler_output"]
    counts = g.op_counts()
    assert counts["scaled_dot_product_attention"] == 2 and counts["layer_norm"] == 5 and counts["linear"] == 13
    assert "encoder.layer.1.attention.self.query.weight" in {n.outputs[0].name for n in g.const_nodes()}
    attention = [n for n in g.nodes if n.op == "scaled_dot_product_attention"]
    assert all(n.loc and n.loc.startswith("modeling_bert.py:") for n in attention)
    assert all(len(n.inputs) == 4 for n in attention)  # the padding mask reaches the attention op
    _check(graphc.compile(g, target="x86", **QUIET).session().run(**inputs), expected)


def test_small_gpt2_torch():
    g = _run_torch("gpt2", small=True)
    assert g.output_names == ["last_hidden_state"]
    # the causal mask is built from aranges: evaluated at import time, no mask arithmetic remains
    assert not {"equal", "less_equal", "logical_and", "cumsum"} & set(g.op_counts())


def test_small_resnet_torch():
    g = _run_torch("resnet", small=True)
    assert g.output_names == ["last_hidden_state", "pooler_output"]


@pytest.mark.parametrize("name", ["bert", "gpt2", "resnet"])
def test_small_onnx(name, tmp_path):
    _run_onnx(name, True, tmp_path)


# ---------------------------------------------------------------------------------------
# full sizes
# ---------------------------------------------------------------------------------------
@pytest.fixture
def deep_graphs():
    """graphc.ir.graph_equal (conftest's round-trip check runs it on every built graph) recurses once
    per node along the longest path: full-size BERT and GPT-2 from ONNX go deeper than Python's limit."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10000))
    yield
    sys.setrecursionlimit(limit)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bert", "gpt2", "resnet"])
def test_full_torch(name, deep_graphs):
    _run_torch(name, small=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bert", "gpt2", "resnet"])
def test_full_onnx(name, tmp_path, deep_graphs):
    _run_onnx(name, False, tmp_path)
