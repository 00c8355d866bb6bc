"""stop_gradient: the identity that autodiff does not differentiate through (torch's ``detach``).

Marks a value as a constant for differentiation: nothing upstream of it gets a
gradient through this use. The autodiff pass replaces it by its input once the
gradient is built, so compiled graphs never contain it (compiled on its own it is
a copy).
"""
from __future__ import annotations

import numpy as np

from ._lazy import te
from .registry import ELEMWISE, Sample, defop, rand, same_as
from .te_util import te_shape

stop_gradient = defop(
    "stop_gradient",
    infer=same_as(0),
    ref=lambda x: np.array(x, copy=True),
    lower=lambda x: te.compute(te_shape(x), lambda *i: x[i], name="stop_gradient"),
    grad=None,
    differentiable=False,
    fusion=ELEMWISE,
    samples=lambda rng: [
        Sample((rand(rng, 3, 4),)),
        Sample((rand(rng, 5, dtype="int64", low=-9, high=9),), note="int64"),
    ],
    doc="Identity whose output autodiff treats as a constant (no gradient flows to its input).",
)
