"""20 training steps with graphc and with PyTorch from the same weights on the same batches:
per-step losses and final parameters agree to 1e-4 relative (seed CNN batch 64, seed MLP,
2-layer BERT encoder; SGD with momentum and AdamW, plus Nesterov and Adam on the MLP).

In the MLP one ReLU input on the wrong side of 0 moves a whole row of the first weight by far
more than 1e-4 (its gradient sums just 64 samples), so the MLP runs check that the reference
never puts a ReLU input within rounding of the kink (see tests/training/parity.py), and
Nesterov uses batch seed 2 because seed 0 does (3e-8 in step 14). In the CNN one such flip is
one of 64 x 784 positions summed into a filter's gradient, far below 1e-4, and with 32M ReLU
inputs per run some always come that close, so the CNN does not check."""
from __future__ import annotations

import pytest

from tests.training.parity import run_parity

REL = 1e-4
# a ReLU input this close to 0 can fall on either side depending on summation order alone: the
# MLP's pre-activations are sums of 784 products of size ~1, which two summation orders round
# apart by a few ulps of 1 (1.2e-7 each)
KINK_MARGIN = 2.5e-7
KINK_SENSITIVE = {"mlp"}

CASES = [
    pytest.param("mlp", "sgd_momentum", 0),
    pytest.param("mlp", "adamw", 0),
    pytest.param("mlp", "sgd_nesterov", 2),
    pytest.param("mlp", "adam", 0),
    pytest.param("bert", "sgd_momentum", 0),
    pytest.param("bert", "adamw", 0),
    pytest.param("cnn", "sgd_momentum", 0, marks=pytest.mark.slow),
    pytest.param("cnn", "adamw", 0, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("model,optimizer,seed", CASES)
def test_twenty_steps_match_pytorch(model, optimizer, seed):
    result = run_parity(model, optimizer, steps=20, seed=seed)
    kink, step = result.closest_kink
    print(f"{model}/{optimizer}: loss rel {result.loss_rel:.2e}, worst param {result.worst_param}, "
          f"closest ReLU input {kink:.1e} (step {step})")
    assert model not in KINK_SENSITIVE or kink > KINK_MARGIN, (f"batch seed {seed}: the reference run has a ReLU input of {kink:.1e} in step {step}, "
                                "within rounding of the kink: the comparison is ill-posed, use another seed")
    assert result.loss_rel <= REL, f"per-step losses differ: graphc {result.graphc_losses} vs torch {result.torch_losses}"
    name, rel = result.worst_param
    assert rel <= REL, f"final {name} differs by {rel:.2e} (relative to its largest value)"
