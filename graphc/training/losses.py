"""Losses a train step can minimize: built-in ones (cross_entropy, mse) and any scalar expression.

A `Loss` says which targets it needs (their types, from the model's output types)
and builds the 0-d loss from the model's outputs and those targets, with graphc
ops, inside the graph being built.

    CrossEntropy(label_smoothing=0.1)        # logits [..., C] (classes last), targets [...] class indices
    MSE()                                    # targets shaped like the output
    LossFn(lambda out, t: ((out - t) ** 2).sum(), targets=[np.zeros((64, 10), np.float32)])
    parse_loss("cross_entropy:label_smoothing=0.1")
"""
from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Sequence

import numpy as np

from .. import dtypes, ops
from ..errors import GraphcError
from ..ir import TensorType
from ..tensor import Tensor


class TrainError(GraphcError):
    """A train step cannot be built as asked (loss, optimizer, parameters)."""


def _output(outputs: Sequence[Tensor], index: int, what: str):
    if not 0 <= index < len(outputs):
        raise TrainError(f"{what} reads model output {index}, but the model has {len(outputs)} output(s)")
    return outputs[index]


class Loss:
    kind = "loss"

    def target_types(self, outputs: Sequence[TensorType]) -> list[TensorType]:
        raise NotImplementedError

    def __call__(self, outputs: Sequence[Tensor], targets: Sequence[Tensor]) -> Tensor:
        raise NotImplementedError

    def to_json(self) -> dict:
        return {"kind": self.kind}


@dataclass
class CrossEntropy(Loss):
    """torch.nn.functional.cross_entropy on model output `output` with class-index targets;
    logits [..., C] and targets [...] are flattened to [N, C] and [N]."""

    label_smoothing: float = 0.0
    ignore_index: int = -100
    output: int = 0
    target_dtype: str = "i64"
    kind = "cross_entropy"

    def target_types(self, outputs):
        logits = _output(outputs, self.output, "cross_entropy")
        if not dtypes.is_float(logits.dtype) or logits.rank < 2:
            raise TrainError(f"cross_entropy needs float logits [N, C] (classes last), but model output {self.output} is {logits}")
        return [TensorType(self.target_dtype, logits.shape[:-1])]

    def __call__(self, outputs, targets):
        logits, (target,) = _output(outputs, self.output, "cross_entropy"), targets
        if logits.ndim > 2:
            logits, target = logits.reshape(-1, logits.shape[-1]), target.reshape(-1)
        return ops.cross_entropy(logits, target, label_smoothing=self.label_smoothing, ignore_index=self.ignore_index)

    def to_json(self):
        return {"kind": self.kind, **asdict(self)}


@dataclass
class MSE(Loss):
    """torch.nn.functional.mse_loss (mean over every element) of model output `output`."""

    output: int = 0
    kind = "mse"

    def target_types(self, outputs):
        out = _output(outputs, self.output, "mse")
        if not dtypes.is_float(out.dtype):
            raise TrainError(f"mse needs a float model output, but output {self.output} is {out}")
        return [out]

    def __call__(self, outputs, targets):
        return ops.mse_loss(_output(outputs, self.output, "mse"), targets[0])

    def to_json(self):
        return {"kind": self.kind, **asdict(self)}


def _target_type(example: Any) -> TensorType:
    if isinstance(example, TensorType):
        return example
    if isinstance(example, tuple) and len(example) == 2 and isinstance(example[1], str):
        return TensorType(dtypes.check(example[1]), tuple(example[0]))
    return TensorType.of(np.asarray(example))


class LossFn(Loss):
    """Any scalar expression: ``fn(*model_outputs, *targets) -> 0-d float Tensor`` in graphc ops.
    `targets` gives each target's type (example arrays, TensorTypes or (shape, dtype))."""

    kind = "custom"

    def __init__(self, fn: Callable[..., Tensor], targets: Sequence[Any] = ()):
        self.fn = fn
        self.types = [_target_type(t) for t in targets]

    def target_types(self, outputs):
        return list(self.types)

    def __call__(self, outputs, targets):
        result = self.fn(*outputs, *targets)
        if not isinstance(result, Tensor) or result.shape != () or not dtypes.is_float(result.dtype):
            got = result.type if isinstance(result, Tensor) else type(result).__name__
            raise TrainError(f"the loss function {getattr(self.fn, '__name__', self.fn)!r} must return a 0-d float tensor, got {got}")
        return result

    def to_json(self):
        return {"kind": self.kind, "name": getattr(self.fn, "__name__", "loss")}


LOSSES: dict[str, type] = {"cross_entropy": CrossEntropy, "mse": MSE}


def parse_options(text: str, what: str) -> dict[str, Any]:
    """'a=1,b=true,c=0.9/0.99' -> {'a': 1, 'b': True, 'c': (0.9, 0.99)} (for CLI specs)."""
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise TrainError(f"{what}: expected KEY=VALUE, got {part!r}")
        out[key.strip()] = _value(value.strip(), f"{what}: {key.strip()}")
    return out


def _value(text: str, what: str) -> Any:
    if "/" in text:
        return tuple(_value(t, what) for t in text.split("/"))
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    raise TrainError(f"{what}: {text!r} is not a number or true/false")


def make(kind: str, table: dict[str, type], options: dict[str, Any], what: str):
    """table[kind](**options), with errors that list the choices and the accepted options."""
    if kind not in table:
        raise TrainError(f"unknown {what} {kind!r}; choose one of: {', '.join(table)}")
    cls = table[kind]
    accepted = [f.name for f in fields(cls)] if hasattr(cls, "__dataclass_fields__") else list(inspect.signature(cls).parameters)
    unknown = [k for k in options if k not in accepted]
    if unknown:
        raise TrainError(f"{what} {kind!r} has no option(s) {', '.join(unknown)} (it takes: {', '.join(accepted)})")
    return cls(**options)


def parse_loss(spec: "str | Loss | Callable", targets: Sequence[Any] = ()) -> Loss:
    """A Loss from a Loss, a callable (with its `targets`), or 'name[:key=value,...]'."""
    if isinstance(spec, Loss):
        return spec
    if callable(spec):
        return LossFn(spec, targets)
    if not isinstance(spec, str):
        raise TrainError(f"loss must be a name ({', '.join(LOSSES)}), a graphc.training Loss or a function, got {type(spec).__name__}")
    kind, _, opts = spec.partition(":")
    return make(kind.strip(), LOSSES, parse_options(opts, f"loss {kind.strip()!r}"), "loss")
