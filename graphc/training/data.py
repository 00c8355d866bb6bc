"""Datasets for `graphc train`: named arrays (an .npz file) cut into the train step's batches.

Each input and target of the train step is an array in the file under its name,
with the examples along axis 0: ``x: f32[N, 1, 28, 28]`` and ``target: i64[N]``
for a step compiled with batch 64 gives N // 64 batches per epoch (the last partial
batch is dropped). Batches are drawn in a shuffled order each epoch (seeded).
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from .. import dtypes
from ..errors import InputError
from ..runtime.artifact import TensorSpec


class Dataset:
    def __init__(self, arrays: dict[str, np.ndarray], specs: Sequence[TensorSpec], source: str = "data"):
        missing = [s.name for s in specs if s.name not in arrays]
        if missing:
            raise InputError(f"{source}: no array named {', '.join(missing)} (the train step takes {', '.join(s.name for s in specs)}; "
                             f"the file has {', '.join(arrays) or 'nothing'})")
        self.specs = list(specs)
        self.batch = specs[0].shape[0] if specs and specs[0].shape else 1
        sizes = set()
        for s in specs:
            a = arrays[s.name]
            got = dtypes.from_numpy(a.dtype) if a.dtype.kind in "biuf" else str(a.dtype)
            if got != s.dtype:
                raise InputError(f"{source}: array {s.name!r} is {got}, the train step takes {s.dtype}")
            if not s.shape or s.shape[0] != self.batch or tuple(a.shape[1:]) != tuple(s.shape[1:]):
                raise InputError(f"{source}: array {s.name!r} is {list(a.shape)}: expected [N, {', '.join(map(str, s.shape[1:]))}] "
                                 f"(N examples, batches of {self.batch}) for the train step's {s.type}")
            sizes.add(a.shape[0])
        if len(sizes) > 1:
            raise InputError(f"{source}: arrays hold different numbers of examples: {sorted(sizes)}")
        self.size = sizes.pop() if sizes else 0
        if self.size < self.batch:
            raise InputError(f"{source}: {self.size} examples, fewer than one batch of {self.batch}")
        self.arrays = {s.name: arrays[s.name] for s in specs}

    @staticmethod
    def load(path: str, specs: Sequence[TensorSpec]) -> "Dataset":
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except FileNotFoundError:
            raise InputError(f"{path}: no such data file") from None
        except (OSError, ValueError) as e:
            raise InputError(f"{path}: not a readable .npz file ({e})") from None
        return Dataset(arrays, specs, path)

    @property
    def batches_per_epoch(self) -> int:
        return self.size // self.batch

    def batches(self, shuffle: bool = True, seed: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """An endless stream of batches (name -> array), epoch after epoch."""
        rng = np.random.default_rng(seed)
        while True:
            order = rng.permutation(self.size) if shuffle else np.arange(self.size)
            for k in range(self.batches_per_epoch):
                idx = order[k * self.batch : (k + 1) * self.batch]
                yield {name: a[idx] for name, a in self.arrays.items()}
