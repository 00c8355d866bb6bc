"""Optimizers: which state each parameter carries and which update op a step applies to it.

The update itself is an op record (graphc.ops.sgd_update / adam_update) emitted
once per parameter into the train-step graph; ``lr`` is the step's learning-rate
input (so schedules need no recompile), ``step`` its update count.

    SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    Adam(lr=1e-3, betas=(0.9, 0.999)), AdamW(lr=1e-3, weight_decay=0.01)
    parse_optimizer("adamw:lr=1e-3,weight_decay=0.01")     # betas as beta1=..,beta2=.. or betas=0.9/0.999
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .. import ops
from ..tensor import Tensor
from .losses import TrainError, make, parse_options


@dataclass
class SGD:
    """torch.optim.SGD."""

    lr: float = 0.01
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    kind = "sgd"

    def __post_init__(self):
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise TrainError("SGD with Nesterov momentum needs momentum > 0 and dampening 0 (as in torch.optim.SGD)")

    def slots(self) -> list[str]:
        return ["momentum_buffer"] if self.momentum else []

    def update(self, param: Tensor, grad: Tensor, lr: Tensor, step: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        out = ops.sgd_update(param, grad, lr, step, *state, momentum=self.momentum, dampening=self.dampening,
                             nesterov=self.nesterov, weight_decay=self.weight_decay)
        return out if isinstance(out, tuple) else (out,)

    def to_json(self) -> dict:
        return {"kind": self.kind, **asdict(self)}


@dataclass
class Adam:
    """torch.optim.Adam (weight decay added to the gradient)."""

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    kind = "adam"
    decoupled = False

    def __post_init__(self):
        self.betas = tuple(float(b) for b in self.betas)
        if len(self.betas) != 2:
            raise TrainError(f"{self.kind}: betas must be two numbers, got {self.betas}")

    def slots(self) -> list[str]:
        return ["exp_avg", "exp_avg_sq"]

    def update(self, param, grad, lr, step, *state):
        return ops.adam_update(param, grad, lr, step, *state, beta1=self.betas[0], beta2=self.betas[1], eps=self.eps,
                               weight_decay=self.weight_decay, decoupled=self.decoupled)

    def to_json(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return {"kind": self.kind, **d}


@dataclass
class AdamW(Adam):
    """torch.optim.AdamW (decoupled weight decay: param *= 1 - lr * weight_decay)."""

    weight_decay: float = 0.01
    kind = "adamw"
    decoupled = True


OPTIMIZERS: dict[str, type] = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def parse_optimizer(spec: Any) -> "SGD | Adam":
    """An optimizer from an instance or 'name[:key=value,...]' (e.g. 'sgd:lr=0.1,momentum=0.9')."""
    if isinstance(spec, tuple(OPTIMIZERS.values())):
        return spec
    if not isinstance(spec, str):
        raise TrainError(f"optimizer must be a name ({', '.join(OPTIMIZERS)}) or a graphc.training optimizer, got {type(spec).__name__}")
    kind, _, text = spec.partition(":")
    kind = kind.strip().lower()
    options = parse_options(text, f"optimizer {kind!r}")
    if "beta1" in options or "beta2" in options:
        default = OPTIMIZERS.get(kind, Adam)().betas if kind in ("adam", "adamw") else (0.9, 0.999)
        options["betas"] = (options.pop("beta1", default[0]), options.pop("beta2", default[1]))
    return make(kind, OPTIMIZERS, options, "optimizer")
