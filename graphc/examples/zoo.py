"""The built-in models `graphc bench` and `graphc tune` know by name, each a PyTorch module with
fixed random weights plus its inputs, and its ONNX export (cached: exporting BERT takes a minute).

    module, inputs = zoo.build("bert")           # inputs: forward-argument name -> numpy array
    path = zoo.onnx_file("bert")                  # exported once per version of torch/transformers/graphc
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class BuiltinModel:
    name: str
    description: str
    make: Callable[[], tuple[object, dict[str, np.ndarray]]]  # () -> (eval-mode torch module, inputs by name)


def _mlp():
    from . import seeds

    return seeds.torch_mlp(seed=0), {"x": seeds.random_input(seeds.MLP_INPUT, seed=1)}


def _cnn():
    from . import seeds

    return seeds.torch_cnn(seed=0), {"x": seeds.random_input(seeds.CNN_INPUT, seed=1)}


def _attention():
    from . import attention

    return attention.torch_attention(), {"x": attention.attention_input()}


def _hf(name: str):
    def make():
        from . import hf_models

        return hf_models.build(name)

    return make


MODELS: dict[str, BuiltinModel] = {
    m.name: m
    for m in [
        BuiltinModel("mlp", "seed MLP 784-128-10 + softmax, batch 64", _mlp),
        BuiltinModel("cnn", "seed CNN (2 conv-relu-pool + linear), batch 64, 28x28", _cnn),
        BuiltinModel("attention", "BERT-style attention block (q/k/v/out + SDPA), b1 h12 s512 d64", _attention),
        BuiltinModel("resnet50", "ResNet-50, batch 1, 224x224", _hf("resnet")),
        BuiltinModel("bert", "BERT-base, batch 1, 128 tokens (padding mask)", _hf("bert")),
        BuiltinModel("gpt2", "GPT-2 small, batch 1, 128 tokens", _hf("gpt2")),
    ]
}


def build(name: str):
    """(eval-mode torch module, inputs by name) of a built-in model."""
    return MODELS[name].make()


def reference(module, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """PyTorch eager outputs, flattened in torch.export's (and so the ONNX export's) order."""
    import torch
    import torch.utils._pytree as pytree

    with torch.no_grad():
        out = module(*torch_args(inputs))
    return [t.numpy() for t in pytree.tree_leaves(out)]


def torch_args(inputs: dict[str, np.ndarray]) -> list:
    """The inputs as positional torch tensors: every built-in model's inputs are its first forward
    arguments, in order (the seed models are nn.Sequential, which takes no keywords)."""
    import torch

    return [torch.from_numpy(v) for v in inputs.values()]


def cache_dir() -> str:
    """Where exported models are kept: $GRAPHC_CACHE_DIR, else $XDG_CACHE_HOME/graphc, else ~/.cache/graphc."""
    root = os.environ.get("GRAPHC_CACHE_DIR")
    if root:
        return root
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "graphc")


def _export_key(name: str) -> str:
    """Changes whenever an export could differ: the model code's libraries (or graphc's examples) changed."""
    import torch

    import graphc

    versions = [torch.__version__, graphc.__version__]
    try:
        import transformers

        versions.append(transformers.__version__)
    except ImportError:
        pass
    here = os.path.dirname(__file__)
    for src in ("zoo.py", "seeds.py", "attention.py", "hf_models.py"):
        with open(os.path.join(here, src), "rb") as f:
            versions.append(hashlib.sha256(f.read()).hexdigest())
    return hashlib.sha256(repr((name, versions)).encode()).hexdigest()[:12]


def onnx_file(name: str, directory: str | None = None) -> str:
    """The built-in model exported to ONNX (exported on first use, then reused)."""
    directory = directory or os.path.join(cache_dir(), "models")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{name}-{_export_key(name)}.onnx")
    if not os.path.exists(path):
        _export(name, path)
    return path


def _export(name: str, path: str) -> None:
    """Export into a scratch directory, then write one self-contained file (all under 2 GB) and rename
    it into place: a concurrent or interrupted export never leaves half a model, and no side-car
    weight file ends up named after a scratch path."""
    import tempfile

    import onnx

    module, inputs = build(name)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path), prefix=f".{name}-export-") as scratch:
        exported = os.path.join(scratch, "model.onnx")
        if name in ("mlp", "cnn", "attention"):
            import torch

            from .export import torch_onnx_export

            torch_onnx_export(module, exported, args=(torch.from_numpy(inputs["x"]),), input_names=["x"])
        else:
            from .hf_models import export_onnx

            export_onnx(module, inputs, exported)
        single = os.path.join(scratch, "single.onnx")
        onnx.save(onnx.load(exported), single)  # onnx.load pulls in the external weights
        os.replace(single, path)
