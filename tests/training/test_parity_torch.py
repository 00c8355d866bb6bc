"""20 training steps with graphc and with PyTorch from the same weights on the same batches:
per-step losses and final parameters agree to 1e-4 relative (seed CNN batch 64, seed MLP,
2-layer BERT encoder; SGD with momentum and AdamW, plus Nesterov and Adam on the MLP)."""
from __future__ import annotations

import pytest

from tests.training.parity import run_parity

REL = 1e-4

CASES = [
    pytest.param("mlp", "sgd_momentum"),
    pytest.param("mlp", "adamw"),
    pytest.param("mlp", "sgd_nesterov"),
    pytest.param("mlp", "adam"),
    pytest.param("bert", "sgd_momentum"),
    pytest.param("bert", "adamw"),
    pytest.param("cnn", "sgd_momentum", marks=pytest.mark.slow),
    pytest.param("cnn", "adamw", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("model,optimizer", CASES)
def test_twenty_steps_match_pytorch(model, optimizer):
    result = run_parity(model, optimizer, steps=20)
    print(f"{model}/{optimizer}: loss rel {result.loss_rel:.2e}, worst param {result.worst_param}")
    assert result.loss_rel <= REL, f"per-step losses differ: graphc {result.graphc_losses} vs torch {result.torch_losses}"
    name, rel = result.worst_param
    assert rel <= REL, f"final {name} differs by {rel:.2e} (relative to its largest value)"
