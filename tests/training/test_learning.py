"""The seed CNN learns a synthetic 10-class image task with a compiled train step (>= 95% training accuracy)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from graphc.examples import seeds
from graphc.training import Dataset, compile_train


def synthetic_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Each class is a fixed random 28x28 pattern at half the strength of the per-example noise."""
    rng = np.random.default_rng(seed)
    prototypes = rng.standard_normal((10, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, n)
    images = 0.5 * prototypes[labels] + rng.standard_normal((n, 1, 28, 28))
    return images.astype(np.float32), labels


def accuracy(sess, x: np.ndarray, y: np.ndarray, batch: int) -> float:
    pred = np.concatenate([sess.eval(x[i : i + batch])[0].argmax(-1) for i in range(0, len(x), batch)])
    return float((pred == y).mean())


@pytest.mark.slow
def test_seed_cnn_reaches_95_percent_training_accuracy():
    x, y = synthetic_images(20 * 64)
    sess = compile_train(seeds.torch_cnn(seed=0).train(), loss="cross_entropy", optimizer="sgd:lr=0.02,momentum=0.9",
                         example_inputs=(torch.from_numpy(x[:64]),), log=lambda *a: None)
    before = accuracy(sess, x, y, 64)
    data = Dataset({"x": x, "target": y}, sess.layout.data + sess.layout.targets)
    batches = data.batches(seed=0)
    losses = [sess.step(b["x"], b["target"]) for b in (next(batches) for _ in range(3 * data.batches_per_epoch))]
    after = accuracy(sess, x, y, 64)
    print(f"training accuracy {before:.3f} -> {after:.3f}, loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    assert before < 0.3, f"the task is too easy to show learning: {before:.3f} before training"
    assert after >= 0.95, f"training accuracy {after:.3f} after 3 epochs (losses {losses[::10]})"
