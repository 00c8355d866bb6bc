"""Model weights both machines can rebuild bit-for-bit from a few numbers.

The GPU machine gets the models without their weights (they would not fit the 60 MiB
carry: BERT-base alone is 440 MB): each float tensor of the state dict is replaced, here,
by a *recipe* — a constant fill, or uniform values of the tensor's original mean and
standard deviation drawn from a seeded PCG64 stream — and rebuilt from it there. The
draws use the raw 64-bit PCG64 output (fixed by the algorithm, not by numpy's version)
and exact float64 arithmetic, so both machines get the same float32 bits; the content
hash of every tensor (graphc.ir.const_hash), recorded here and checked there, proves it.

Imported by scripts/gpu/package.py (here) and scripts/gpu/run_on_gpu.py (there): numpy only.
"""
from __future__ import annotations

import numpy as np


def uniform(seed: int, shape, loc: float, scale: float) -> np.ndarray:
    """float32 values uniform in [loc - scale, loc + scale), bit-identical on every machine."""
    n = int(np.prod(shape, dtype=np.int64))
    raw = np.random.PCG64(seed).random_raw(n)
    u = (raw >> np.uint64(11)).astype(np.float64) * 2.0**-53  # 53 random bits: exact in float64
    return (np.float64(loc) + np.float64(scale) * (2.0 * u - 1.0)).astype(np.float32).reshape(tuple(shape))


def recipe_for(index: int, array: np.ndarray) -> dict | None:
    """A recipe reproducing a float32 tensor's statistics (None: not a float32 tensor, ship it as is)."""
    if array.dtype != np.float32 or array.size == 0:
        return None
    flat = array.reshape(-1)
    if np.all(flat == flat[0]):
        return {"shape": list(array.shape), "fill": float(flat[0])}
    std = float(np.std(flat, dtype=np.float64))
    return {
        "shape": list(array.shape),
        "seed": 7919 * (index + 1),
        "loc": float(np.float32(np.mean(flat, dtype=np.float64))),
        "scale": float(np.float32(std * 3**0.5)),  # a uniform's std is scale / sqrt(3)
    }


def build(recipe: dict) -> np.ndarray:
    if "fill" in recipe:
        return np.full(tuple(recipe["shape"]), recipe["fill"], np.float32)
    return uniform(recipe["seed"], recipe["shape"], recipe["loc"], recipe["scale"])
