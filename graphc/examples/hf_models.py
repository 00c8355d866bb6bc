"""Hugging Face `transformers` models built from configs with random (seeded) weights, and their inputs.

Used by the tests and the benchmarks. Nothing is downloaded: every model comes from a
config (``BertModel(BertConfig(...))``), never ``from_pretrained``. Each model has a full
size (the config defaults: BERT-base, GPT-2 small, ResNet-50) and a small one for fast
tests: fewer layers, same widths, and a 1000-token vocabulary (the full embedding tables
are most of the small models' weights, and add nothing to what the tests cover).

    module, inputs = hf_models.build("bert", small=True)   # inputs: name -> numpy array
    expected = hf_models.reference(module, inputs)          # the outputs, flattened, as numpy
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

SEQ_LEN = 128
IMAGE_SIZE = 224
SMALL_VOCAB = 1000


@dataclass(frozen=True)
class ModelSpec:
    make: Callable[[bool, int], object]  # (small, seed) -> eval-mode torch module
    inputs: Callable[..., dict[str, np.ndarray]]  # (module, seed) -> inputs by forward-argument name


def _seeded(seed: int):
    import torch

    torch.manual_seed(seed)


def bert(small: bool = False, seed: int = 0):
    from transformers import BertConfig, BertModel

    _seeded(seed)
    config = BertConfig(num_hidden_layers=2, vocab_size=SMALL_VOCAB) if small else BertConfig()
    return BertModel(config).eval()


def _token_ids(module, seed: int, batch: int, seq: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, module.config.vocab_size, (batch, seq), dtype=np.int64)


def bert_inputs(module, seed: int = 0, batch: int = 1, seq: int = SEQ_LEN) -> dict[str, np.ndarray]:
    """Token ids and an attention mask whose last quarter (padding) is masked out."""
    mask = np.ones((batch, seq), np.int64)
    mask[:, seq - seq // 4 :] = 0
    return {"input_ids": _token_ids(module, seed, batch, seq), "attention_mask": mask}


def gpt2(small: bool = False, seed: int = 0):
    """GPT-2 without the key/value cache (``use_cache=False`` in the config: forward returns no past_key_values)."""
    from transformers import GPT2Config, GPT2Model

    _seeded(seed)
    if small:  # (the special tokens must be in the vocabulary)
        config = GPT2Config(n_layer=2, vocab_size=SMALL_VOCAB, bos_token_id=SMALL_VOCAB - 1, eos_token_id=SMALL_VOCAB - 1, use_cache=False)
    else:
        config = GPT2Config(use_cache=False)
    return GPT2Model(config).eval()


def gpt2_inputs(module, seed: int = 0, batch: int = 1, seq: int = SEQ_LEN) -> dict[str, np.ndarray]:
    return {"input_ids": _token_ids(module, seed, batch, seq)}


def resnet(small: bool = False, seed: int = 0):
    """ResNet-50 (the config default), or one bottleneck block per stage when small."""
    from transformers import ResNetConfig, ResNetModel

    _seeded(seed)
    config = ResNetConfig(depths=[1, 1, 1, 1]) if small else ResNetConfig()
    return ResNetModel(config).eval()


def resnet_inputs(module, seed: int = 0, batch: int = 1, size: int = IMAGE_SIZE) -> dict[str, np.ndarray]:
    return {"pixel_values": np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)}


MODELS: dict[str, ModelSpec] = {
    "bert": ModelSpec(bert, bert_inputs),
    "gpt2": ModelSpec(gpt2, gpt2_inputs),
    "resnet": ModelSpec(resnet, resnet_inputs),
}


def build(name: str, small: bool = False, seed: int = 0):
    """(eval-mode torch module, inputs by name) for one of `MODELS`."""
    spec = MODELS[name]
    module = spec.make(small, seed)
    return module, spec.inputs(module, seed)


def reference(module, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The module's outputs on `inputs`, flattened in torch.export's order (ModelOutput fields in order)."""
    import torch
    import torch.utils._pytree as pytree

    with torch.no_grad():
        out = module(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    return [t.numpy() for t in pytree.tree_leaves(out)]


def export_onnx(module, inputs: dict[str, np.ndarray], path: str) -> str:
    """torch.onnx.export (torch.export-based exporter) with keyword inputs named as the forward's arguments."""
    import torch

    from .export import torch_onnx_export

    kwargs = {k: torch.from_numpy(v) for k, v in inputs.items()}
    return torch_onnx_export(module, path, kwargs=kwargs, input_names=list(inputs))
