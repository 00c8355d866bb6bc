"""The seed models the product grew from (the PyTorch MNIST SimpleCNN and an MLP),
in PyTorch and written with graphc ops, sharing one set of weights.

Used by the README demo, the tests and the benchmarks. Weights are random but
fixed by a seed (no model hubs).
"""
from __future__ import annotations

import numpy as np

import graphc
from graphc import nn as gnn

CNN_INPUT = (64, 1, 28, 28)
MLP_INPUT = (64, 784)


def torch_cnn(seed: int = 0):
    """conv(1->32, 3x3, pad 1)+relu+maxpool 2x2, conv(32->64)+relu+maxpool 2x2, flatten, linear(3136->10)."""
    import torch
    from torch import nn

    class SimpleCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
            self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
            self.fc = nn.Linear(7 * 7 * 64, 10)

        def forward(self, x):
            x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
            x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
            return self.fc(torch.flatten(x, 1))

    torch.manual_seed(seed)
    return SimpleCNN().eval()


def torch_mlp(seed: int = 0):
    """linear(784->128)+relu+linear(128->10)+softmax."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10), nn.Softmax(dim=-1)).eval()


def state_dict_numpy(module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def _params(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: graphc.param(k, v) for k, v in weights.items()}


def graphc_cnn(weights: dict[str, np.ndarray]):
    """The SimpleCNN's forward written with graphc.nn; `weights` uses the torch state_dict names."""
    p = _params(weights)

    def cnn(x):
        x = gnn.max_pool2d(gnn.relu(gnn.conv2d(x, p["conv1.weight"], p["conv1.bias"], padding=1)), 2)
        x = gnn.max_pool2d(gnn.relu(gnn.conv2d(x, p["conv2.weight"], p["conv2.bias"], padding=1)), 2)
        return gnn.linear(gnn.flatten(x, 1), p["fc.weight"], p["fc.bias"])

    return cnn


def graphc_mlp(weights: dict[str, np.ndarray]):
    p = _params(weights)

    def mlp(x):
        h = gnn.relu(gnn.linear(x, p["0.weight"], p["0.bias"]))
        return gnn.softmax(gnn.linear(h, p["2.weight"], p["2.bias"]), dim=-1)

    return mlp


def random_input(shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def export_onnx(module, example: np.ndarray, path: str) -> str:
    """torch.onnx.export (torch.export-based exporter), input named `x`, output `logits`."""
    import torch

    from .export import torch_onnx_export

    return torch_onnx_export(module, path, args=(torch.from_numpy(example),), input_names=["x"], output_names=["logits"])
