"""One BERT-style self-attention block in PyTorch: q/k/v projections, SDPA, output projection.

Used by the benchmarks (batch 1, 12 heads, 512 tokens, head size 64) and their tests.
Weights are random but fixed by a seed.
"""
from __future__ import annotations

import numpy as np

BATCH, HEADS, SEQ, HEAD_DIM = 1, 12, 512, 64


def torch_attention(heads: int = HEADS, head_dim: int = HEAD_DIM, seed: int = 0):
    """x[b, s, heads*head_dim] -> the block's output, same shape (no mask: every token sees every token)."""
    import torch
    from torch import nn

    class AttentionBlock(nn.Module):
        def __init__(self):
            super().__init__()
            hidden = heads * head_dim
            self.query = nn.Linear(hidden, hidden)
            self.key = nn.Linear(hidden, hidden)
            self.value = nn.Linear(hidden, hidden)
            self.out = nn.Linear(hidden, hidden)

        def _heads(self, t):  # [b, s, hidden] -> [b, heads, s, head_dim]
            b, s, _ = t.shape
            return t.view(b, s, heads, head_dim).transpose(1, 2)

        def forward(self, x):
            q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
            y = torch.nn.functional.scaled_dot_product_attention(q, k, v)
            b, _, s, _ = y.shape
            return self.out(y.transpose(1, 2).reshape(b, s, heads * head_dim))

    torch.manual_seed(seed)
    return AttentionBlock().eval()


def attention_input(batch: int = BATCH, seq: int = SEQ, heads: int = HEADS, head_dim: int = HEAD_DIM, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, seq, heads * head_dim)).astype(np.float32)
