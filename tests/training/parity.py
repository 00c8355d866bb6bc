"""Training the same model with graphc and with PyTorch, step for step.

`run_parity` trains one copy of a graphc.examples.train_models case with
`graphc.compile_train` and one with torch.optim on the same batches from the same
initial weights, and returns the per-step losses of both, the final parameters'
relative differences and how close the reference run came to a ReLU kink.

Why the kink matters: a ReLU input within rounding of 0 (say 3e-8) may be positive in one
framework and non-positive in the other; both are right to the last bit they have, but the
sample's whole gradient contribution to that unit is then kept by one and dropped by the
other, and the parameters part by far more than rounding from that step on. Such a run
cannot be compared to 1e-4; the tests check that their batches stay clear of it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from graphc.examples.train_models import CASES, OPTIMIZERS, batches, torch_step


@dataclass
class Parity:
    graphc_losses: list[float]
    torch_losses: list[float]
    param_rel: dict[str, float]  # per parameter: max |graphc - torch| / max |torch|
    closest_kink: tuple[float, int]  # smallest |ReLU input| of the reference run, and its step

    @property
    def loss_rel(self) -> float:
        return max(abs(a - b) / abs(b) for a, b in zip(self.graphc_losses, self.torch_losses))

    @property
    def worst_param(self) -> tuple[str, float]:
        return max(self.param_rel.items(), key=lambda kv: kv[1])


class KinkWatch(TorchDispatchMode):
    """Records the smallest |x| that reaches aten.relu (nn.ReLU and torch.relu alike) and the step it was in."""

    def __init__(self):
        super().__init__()
        self.step = 0
        self.closest = (math.inf, -1)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.relu.default:
            nearest = float(args[0].detach().abs().min())
            if nearest < self.closest[0]:
                self.closest = (nearest, self.step)
        return func(*args, **(kwargs or {}))


def run_parity(model: str, optimizer: str, steps: int = 20, target: str = "x86", seed: int = 0) -> Parity:
    from graphc.training import compile_train

    case = CASES[model]
    spec, make_torch_opt = OPTIMIZERS[optimizer]
    data = batches(case, steps, seed=seed)
    ref = case.make()
    sess = compile_train(case.make(), loss=case.loss, optimizer=spec, target=target,
                         example_inputs=(torch.from_numpy(data[0][0]),), log=lambda *a: None)
    opt = make_torch_opt([p for p in ref.parameters() if p.requires_grad])
    ours = [sess.step(x, y) for x, y in data]
    theirs = []
    with KinkWatch() as watch:
        for step, (x, y) in enumerate(data):
            watch.step = step
            theirs.append(torch_step(ref, opt, case, x, y))
    final = sess.params
    trained = {n: p.detach().numpy() for n, p in ref.named_parameters() if p.requires_grad}
    assert sorted(final) == sorted(trained), f"graphc trains {sorted(final)}, torch {sorted(trained)}"
    rel = {n: float(np.abs(final[n] - t).max() / np.abs(t).max()) for n, t in trained.items()}
    return Parity(ours, theirs, rel, watch.closest)
