"""Models, batches, losses and optimizers for training comparisons with PyTorch (the parity tests in
tests/training and benchmarks/train_step.py).

Each `Case` is a torch module factory (fixed seed, train mode, dropout off), a batch
generator and one loss spelled for graphc and for torch; each `OPTIMIZERS` entry is a
graphc optimizer spec and the torch.optim constructor it matches.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import seeds

BERT_CLASSES = 5
BERT_VOCAB = 50
BERT_BATCH, BERT_SEQ = 4, 16


def bert_tagger(seed: int = 0, hidden: int = 32, layers: int = 2, heads: int = 4, intermediate: int = 64, seq: int = BERT_SEQ):
    """An HF BERT encoder (default: 2 layers, small widths; dropout off) with a per-token classification head."""
    import torch
    from transformers import BertConfig, BertModel

    class BertTagger(torch.nn.Module):
        def __init__(self):
            super().__init__()
            config = BertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=intermediate,
                                vocab_size=BERT_VOCAB, max_position_embeddings=seq,
                                hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
            self.bert = BertModel(config, add_pooling_layer=False)
            self.head = torch.nn.Linear(config.hidden_size, BERT_CLASSES)

        def forward(self, input_ids):
            return self.head(self.bert(input_ids).last_hidden_state)

    torch.manual_seed(seed)
    model = BertTagger().train()
    # The exact gradient of an attention key bias is zero (softmax ignores a shift shared by a
    # row), so both frameworks compute rounding noise for it, which Adam scales up to +-lr
    # steps of random sign: not comparable, so it is frozen (a constant) in both.
    for name, p in model.named_parameters():
        if name.endswith("attention.self.key.bias"):
            p.requires_grad_(False)
    return model


def _cnn():
    return seeds.torch_cnn(seed=0).train()


def _mlp():
    return seeds.torch_mlp(seed=0).train()


def _images(rng):
    return rng.standard_normal(seeds.CNN_INPUT).astype(np.float32), rng.integers(0, 10, seeds.CNN_INPUT[0])


def _vectors(rng):
    x = rng.standard_normal(seeds.MLP_INPUT).astype(np.float32)
    return x, np.eye(10, dtype=np.float32)[rng.integers(0, 10, seeds.MLP_INPUT[0])]  # one-hot targets for MSE


def _tokens(rng):
    ids = rng.integers(0, BERT_VOCAB, (BERT_BATCH, BERT_SEQ))
    labels = rng.integers(0, BERT_CLASSES, (BERT_BATCH, BERT_SEQ))
    labels[:, -3:] = -100  # padding positions, ignored by the loss
    return ids, labels


def _cross_entropy(out, t):
    import torch.nn.functional as F

    return F.cross_entropy(out, t)


def _mse(out, t):
    import torch.nn.functional as F

    return F.mse_loss(out, t)


def _token_cross_entropy(out, t):
    import torch.nn.functional as F

    return F.cross_entropy(out.reshape(-1, out.shape[-1]), t.reshape(-1), label_smoothing=0.1, ignore_index=-100)


@dataclass(frozen=True)
class Case:
    make: Callable  # () -> torch module in train mode
    batch: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]  # rng -> (inputs, targets)
    loss: str  # graphc's loss spec
    torch_loss: Callable  # (output, targets) -> torch loss
    description: str


CASES = {
    "cnn": Case(_cnn, _images, "cross_entropy", _cross_entropy, "seed CNN, batch 64, cross-entropy"),
    "mlp": Case(_mlp, _vectors, "mse", _mse, "seed MLP (softmax output), batch 64, MSE to one-hot"),
    "bert": Case(bert_tagger, _tokens, "cross_entropy:label_smoothing=0.1,ignore_index=-100", _token_cross_entropy,
                 "2-layer BERT encoder (hidden 32, 4 heads) + token classifier, batch 4 x 16 tokens, label smoothing 0.1"),
}


def _torch_optimizer(name: str, **kw):
    def make(params):
        import torch

        return getattr(torch.optim, name)(params, **kw)

    return make


OPTIMIZERS = {
    "sgd_momentum": ("sgd:lr=0.05,momentum=0.9,weight_decay=1e-4", _torch_optimizer("SGD", lr=0.05, momentum=0.9, weight_decay=1e-4)),
    "sgd_nesterov": ("sgd:lr=0.05,momentum=0.9,nesterov=true", _torch_optimizer("SGD", lr=0.05, momentum=0.9, nesterov=True)),
    "adamw": ("adamw:lr=1e-3,weight_decay=0.01", _torch_optimizer("AdamW", lr=1e-3, weight_decay=0.01)),
    "adam": ("adam:lr=1e-3,weight_decay=1e-3", _torch_optimizer("Adam", lr=1e-3, weight_decay=1e-3)),
}


def batches(case: Case, n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [case.batch(rng) for _ in range(n)]


def torch_step(module, optimizer, case: Case, x: np.ndarray, y: np.ndarray) -> float:
    """One PyTorch training step (zero_grad, forward, loss, backward, optimizer step); returns the loss."""
    import torch

    optimizer.zero_grad()
    loss = case.torch_loss(module(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    optimizer.step()
    return loss.item()
