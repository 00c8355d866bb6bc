"""The models the GPU run covers, built the same way on both machines.

    module, inputs = models.build("bert_small")   # eval-mode torch module, inputs by name

Every float32 tensor of the state dict is replaced by its `portable` recipe (so the GPU
machine can rebuild the weights graphc needs from a few numbers), and ResNet's batch
norms are folded into their convolutions first (torch.nn.utils.fusion), which makes
every compiled parameter a state-dict tensor: graphc would fold them anyway, and a
folded weight has no recipe. PyTorch runs the same folded model, so the baselines do
no batch-norm work graphc skips.

The seed models and the attention block are plain PyTorch code in graphc.examples; the
Hugging Face ones need `transformers`, which the GPU machine may lack: there the runner
checks graphc against the outputs computed here and skips the PyTorch timings.
"""
from __future__ import annotations

import numpy as np
import portable

# name -> (description, builder); builders return (module, inputs by name)
MODELS: dict[str, str] = {
    "mlp": "seed MLP 784-128-10 + softmax, batch 64",
    "cnn": "seed CNN (2 conv-relu-pool + linear), batch 64, 28x28",
    "attention": "BERT-style attention block, b1 h12 s512 d64",
    "bert_small": "BERT, 2 layers, batch 1, 128 tokens",
    "gpt2_small": "GPT-2, small config, batch 1, 128 tokens",
    "resnet_small": "ResNet, one bottleneck per stage, batch 1, 224x224",
    "bert": "BERT-base, batch 1, 128 tokens",
    "gpt2": "GPT-2 small, batch 1, 128 tokens",
    "resnet50": "ResNet-50, batch 1, 224x224",
}
DEFAULT = ["mlp", "cnn", "attention", "bert_small", "gpt2_small", "resnet_small", "bert", "gpt2", "resnet50"]
HF = {"bert_small": ("bert", True), "gpt2_small": ("gpt2", True), "resnet_small": ("resnet", True),
      "bert": ("bert", False), "gpt2": ("gpt2", False), "resnet50": ("resnet", False)}


def _make(name: str):
    from graphc.examples import attention, seeds

    if name == "mlp":
        return seeds.torch_mlp(seed=0), {"x": seeds.random_input(seeds.MLP_INPUT, seed=1)}
    if name == "cnn":
        return seeds.torch_cnn(seed=0), {"x": seeds.random_input(seeds.CNN_INPUT, seed=1)}
    if name == "attention":
        return attention.torch_attention(), {"x": attention.attention_input()}
    if name in HF:
        from graphc.examples import hf_models

        base, small = HF[name]
        return hf_models.build(base, small=small)
    raise KeyError(f"unknown model {name!r}; known: {', '.join(MODELS)}")


def fold_batch_norms(module):
    """Every (convolution, normalization) pair of a module tree (Hugging Face ResNet's layers and
    shortcuts) as one convolution with the batch norm folded in; eval mode only."""
    import torch
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for m in module.modules():
        conv, bn = getattr(m, "convolution", None), getattr(m, "normalization", None)
        if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
            m.convolution = fuse_conv_bn_eval(conv, bn)
            m.normalization = torch.nn.Identity()
    return module


def recipes_of(module) -> dict[str, dict]:
    """State-dict key -> recipe, for every float32 tensor (from the module's own statistics)."""
    out = {}
    for i, (key, t) in enumerate(module.state_dict().items()):
        r = portable.recipe_for(i, t.detach().cpu().numpy())
        if r is not None:
            out[key] = r
    return out


def apply_recipes(module, recipes: dict[str, dict]):
    import torch

    state = module.state_dict()
    state.update({k: torch.from_numpy(portable.build(r)) for k, r in recipes.items()})
    module.load_state_dict(state)
    return module


def build(name: str, recipes: dict[str, dict] | None = None):
    """(eval-mode module with recipe weights, inputs by name, the recipes used). Pass the recipes
    recorded when packaging to get bit-identical weights without recomputing statistics."""
    module, inputs = _make(name)
    module = fold_batch_norms(module.eval())
    recipes = recipes if recipes is not None else recipes_of(module)
    return apply_recipes(module, recipes).eval(), inputs, recipes


def example_inputs(name: str, inputs: dict[str, np.ndarray]):
    """What graphc.compile traces the module with: keyword inputs for the Hugging Face models
    (their forward has optional arguments in between), positional for the plain modules."""
    return inputs if name in HF else tuple(inputs.values())


def torch_call(name: str, module, tensors: dict):
    return module(**tensors) if name in HF else module(*tensors.values())


def torch_outputs(name: str, module, inputs: dict[str, np.ndarray], device: str = "cpu") -> list[np.ndarray]:
    """The module's outputs, flattened in torch.export's order (what graphc's artifact returns)."""
    import torch
    import torch.utils._pytree as pytree

    with torch.no_grad():
        out = torch_call(name, module, {k: torch.from_numpy(v).to(device) for k, v in inputs.items()})
    return [t.detach().cpu().numpy() for t in pytree.tree_leaves(out)]
