"""Inputs for the flash-attention template tests (CPU and CUDA): the op's samples (softcap is
not fused into the templates) plus shapes that cross the templates' block boundaries."""
from __future__ import annotations

import numpy as np
import pytest

from tests.ops.test_registry import samples_of


def flash_attention_cases():
    """pytest params (inputs [q, k, v, *mask], scale, causal)."""
    for i, s in enumerate(samples_of("scaled_dot_product_attention")):
        if not s.attrs.get("softcap"):
            yield pytest.param(list(s.inputs), s.attrs.get("scale"), s.attrs.get("causal", False), id=f"sample{i}-{s.note}")
    rng = np.random.default_rng(0)

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    # several query blocks and key tiles, both ragged; padding mask; causal over several tiles
    pad = np.zeros((2, 1, 1, 45), np.float32)
    pad[..., 40:] = -1e9
    yield pytest.param([r(2, 2, 70, 16), r(2, 2, 45, 16), r(2, 2, 45, 24), pad], None, False, id="ragged-tiles-padding-mask")
    yield pytest.param([r(1, 3, 100, 8), r(1, 3, 100, 8), r(1, 3, 100, 8)], 0.2, True, id="causal-many-tiles")
