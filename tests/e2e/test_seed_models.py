"""The seed CNN and MLP, through tracing and through ONNX, compiled for x86, against PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc
from graphc.examples import seeds
from tests.conftest import assert_roundtrip

TOL = 1e-4  # max abs diff, relative to the output scale


def _check(actual, expected):
    scale = max(1.0, float(np.max(np.abs(expected))))
    diff = float(np.max(np.abs(actual - expected)))
    assert diff <= TOL * scale, f"max abs diff {diff:.3g} > {TOL * scale:.3g}"


@pytest.fixture(scope="module")
def cnn():
    model = seeds.torch_cnn(seed=0)
    x = seeds.random_input(seeds.CNN_INPUT, seed=1)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    return model, x, ref


@pytest.fixture(scope="module")
def mlp():
    model = seeds.torch_mlp(seed=0)
    x = seeds.random_input(seeds.MLP_INPUT, seed=2)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    return model, x, ref


def test_traced_cnn_matches_pytorch(cnn):
    model, x, ref = cnn
    g = graphc.trace(seeds.graphc_cnn(seeds.state_dict_numpy(model)), x)
    assert g.inputs[0].name == "x" and g.outputs[0].shape == (64, 10)
    assert {"conv2d", "max_pool2d", "linear"} <= set(g.op_counts())
    assert_roundtrip(g)
    _check(graphc.run_graph(g, x)[0], ref)
    _check(graphc.compile(g, target="x86").session().run(x)[0], ref)


def test_traced_mlp_matches_pytorch(mlp):
    model, x, ref = mlp
    g = graphc.trace(seeds.graphc_mlp(seeds.state_dict_numpy(model)), x)
    assert_roundtrip(g)
    _check(graphc.run_graph(g, x)[0], ref)
    _check(graphc.compile(g, target="x86").session().run(x)[0], ref)


def test_traced_params_as_inputs(mlp):
    model, x, ref = mlp
    weights = seeds.state_dict_numpy(model)
    g = graphc.trace(seeds.graphc_mlp(weights), x, params_as_inputs=True)
    assert [v.name for v in g.inputs] == ["x", "0.weight", "0.bias", "2.weight", "2.bias"]
    sess = graphc.compile(g, target="x86").session()
    _check(sess.run(x, **weights)[0], ref)
    # new weights at run time, no recompile
    w2 = {k: v * 0.5 for k, v in weights.items()}
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)
        ref2 = model(torch.from_numpy(x)).numpy()
        for p in model.parameters():
            p.mul_(2.0)
    _check(sess.run(x, **w2)[0], ref2)


@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_onnx_seed_models_match_pytorch(name, cnn, mlp, tmp_path):
    model, x, ref = cnn if name == "cnn" else mlp
    path = seeds.export_onnx(model, x, str(tmp_path / f"{name}.onnx"))
    g = graphc.from_onnx(path)
    assert_roundtrip(g)
    _check(graphc.run_graph(g, x)[0], ref)
    compiled = graphc.compile(path, target="x86")
    art = compiled.save(str(tmp_path / f"{name}.gca"))
    _check(graphc.runtime.load(art).run(x)[0], ref)
