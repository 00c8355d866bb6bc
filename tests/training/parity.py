"""Training the same model with graphc and with PyTorch, step for step.

`run_parity` trains one copy of a graphc.examples.train_models case with
`graphc.compile_train` and one with torch.optim on the same batches from the same
initial weights, and returns the per-step losses of both and the final parameters'
relative differences.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from graphc.examples.train_models import CASES, OPTIMIZERS, batches, torch_step


@dataclass
class Parity:
    graphc_losses: list[float]
    torch_losses: list[float]
    param_rel: dict[str, float]  # per parameter: max |graphc - torch| / max |torch|

    @property
    def loss_rel(self) -> float:
        return max(abs(a - b) / abs(b) for a, b in zip(self.graphc_losses, self.torch_losses))

    @property
    def worst_param(self) -> tuple[str, float]:
        return max(self.param_rel.items(), key=lambda kv: kv[1])


def run_parity(model: str, optimizer: str, steps: int = 20, target: str = "x86") -> Parity:
    from graphc.training import compile_train

    case = CASES[model]
    spec, make_torch_opt = OPTIMIZERS[optimizer]
    data = batches(case, steps)
    ref = case.make()
    sess = compile_train(case.make(), loss=case.loss, optimizer=spec, target=target,
                         example_inputs=(torch.from_numpy(data[0][0]),), log=lambda *a: None)
    opt = make_torch_opt([p for p in ref.parameters() if p.requires_grad])
    ours = [sess.step(x, y) for x, y in data]
    theirs = [torch_step(ref, opt, case, x, y) for x, y in data]
    final = sess.params
    trained = {n: p.detach().numpy() for n, p in ref.named_parameters() if p.requires_grad}
    assert sorted(final) == sorted(trained), f"graphc trains {sorted(final)}, torch {sorted(trained)}"
    rel = {n: float(np.abs(final[n] - t).max() / np.abs(t).max()) for n, t in trained.items()}
    return Parity(ours, theirs, rel)
