"""The op registry: one record per op, holding every rule about it.

An `OpDef` is the single place an op is defined:

* ``infer(*input_types, **attrs) -> TensorType | tuple``: shape/dtype inference;
  raise `TypeInferenceError` (via ``check_infer``) for bad inputs.
* ``ref(*arrays, **attrs) -> ndarray | tuple``: the numpy reference semantics.
* ``lower(*te_tensors, **attrs) -> te.Tensor | tuple``: the TVM TE computation.
  Use the lazy ``te``/``topi``/``tir`` handles from ``graphc.ops._lazy`` so that the
  registry imports without the TVM compiler (the runtime interpreter needs it).
* ``grad(g, *inputs, out, **attrs) -> tuple[Tensor | None, ...]``: reverse-mode rule written
  in graphc ops (so backward graphs go through the same passes and codegen).
  ``g`` is the output cotangent (a tuple for multi-output ops), ``out`` the forward
  output(s); it returns one entry per input, None where there is no gradient.
* ``fusion``: how the op fuses (see the kinds below).
* ``samples(rng) -> list[Sample]``: inputs and attributes the tests run the op on.
* ``attrs``: attribute names with defaults (``REQUIRED`` for none); calls and the
  parser fill defaults, so nodes always carry every attribute.

Calling an OpDef with graph tensors emits a node into the graph being built and
returns `graphc.Tensor` proxies: the registry doubles as the functional op API.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import IRError, TypeInferenceError
from ..ir import TensorType, Value, current_builder

# Fusion kinds, after TVM's OpPatternKind: what may be fused into what.
ELEMWISE = "elemwise"  # out[i] = f(in[i]) (inputs may broadcast)
INJECTIVE = "injective"  # each output element reads one input element: reshape, transpose, slice, concat...
REDUCE = "reduce"  # reductions and normalizations: sum, softmax, layer_norm
ANCHOR = "anchor"  # compute-heavy ops whose elementwise consumers fuse into them: conv2d, matmul, pools
OPAQUE = "opaque"  # never fused
FUSION_KINDS = (ELEMWISE, INJECTIVE, REDUCE, ANCHOR, OPAQUE)


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass
class Sample:
    """Inputs (numpy arrays) and attributes one test case runs an op on."""

    inputs: tuple
    attrs: dict = field(default_factory=dict)
    note: str = ""
    rtol: float = 1e-5  # tolerances for comparing compiled output with the reference
    atol: float = 1e-5
    no_grad_check: tuple = ()  # inputs whose gradient is undefined at this sample (skip finite differences)


@dataclass(eq=False)
class OpDef:
    name: str
    infer: Callable[..., Any]
    ref: Callable[..., Any]
    lower: Callable[..., Any]
    grad: Callable[..., Any] | None
    fusion: str
    samples: Callable[[np.random.Generator], list[Sample]]
    attrs: dict[str, Any] = field(default_factory=dict)
    differentiable: bool = True  # False: comparisons, integer ops (no grad rule needed)
    doc: str = ""

    def __post_init__(self):
        if self.fusion not in FUSION_KINDS:
            raise ValueError(f"op {self.name}: unknown fusion kind {self.fusion!r}")

    def __call__(self, *args, **attrs):
        """Emit this op into the graph being built (see graphc.tensor.Tensor)."""
        from ..tensor import Tensor, as_value

        builder = current_builder()
        # Python numbers take the dtype of the tensors they meet (the first non-bool one)
        tensors = [a for a in args if isinstance(a, (Tensor, Value))]
        like = next((a for a in tensors if a.dtype != "bool"), tensors[0] if tensors else None)
        like_dtype = like.dtype if like is not None else None
        values = [as_value(a, builder, like_dtype) for a in args]
        loc = attrs.pop("_loc", None)
        outs = builder.emit(self.name, values, attrs, loc=loc)
        wrapped = tuple(Tensor(v) for v in outs)
        return wrapped[0] if len(wrapped) == 1 else wrapped

    def __repr__(self) -> str:
        return f"<op {self.name}>"


REGISTRY: dict[str, OpDef] = {}


def defop(name: str, **kwargs) -> OpDef:
    if name in REGISTRY:
        raise ValueError(f"op {name} defined twice")
    op = OpDef(name=name, **kwargs)
    REGISTRY[name] = op
    return op


def get_op(name: str) -> OpDef:
    try:
        return REGISTRY[name]
    except KeyError:
        raise IRError(f"unknown op {name!r}") from None


# ---------------------------------------------------------------------------------------
# attributes
# ---------------------------------------------------------------------------------------
def _freeze(v: Any) -> Any:
    """Canonical attribute values: lists become tuples, numpy scalars become Python ones."""
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return _freeze(v.tolist())
    return v


def normalize_attrs(op: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and reject unknown or missing attributes (``const``/``fused`` are free-form)."""
    if op in ("const", "fused"):
        return {k: _freeze(v) for k, v in attrs.items()}
    schema = get_op(op).attrs
    unknown = sorted(set(attrs) - set(schema))
    if unknown:
        raise TypeInferenceError(f"op {op!r} has no attribute(s) {', '.join(unknown)} (it takes: {', '.join(schema) or 'none'})")
    out = {}
    for k, default in schema.items():
        if k in attrs:
            out[k] = _freeze(attrs[k])
        elif default is REQUIRED:
            raise TypeInferenceError(f"op {op!r} needs attribute {k!r}")
        else:
            out[k] = _freeze(default)
    return out


def infer_node_types(op: str, input_types: Sequence[TensorType], attrs: dict, *, body=None, loc: str | None = None) -> list[TensorType]:
    """Output types of a node; errors name the op (and where it came from)."""
    if op == "fused":
        if body is None:
            raise IRError("fused node without a body")
        if [v.type for v in body.inputs] != list(input_types):
            raise TypeInferenceError(
                f"fused[{attrs.get('kind')}] inputs {[str(t) for t in input_types]} do not match its body's "
                f"{[str(v.type) for v in body.inputs]}"
            )
        return [v.type for v in body.outputs]
    if op == "const":
        raise IRError("const nodes are made with GraphBuilder.const")
    record = get_op(op)
    try:
        result = record.infer(*input_types, **attrs)
    except TypeInferenceError as e:
        where = f" at {loc}" if loc else ""
        raise TypeInferenceError(f"{op}{where}: {e} (inputs: {', '.join(str(t) for t in input_types) or 'none'})") from None
    except (TypeError, ValueError, IndexError) as e:
        where = f" at {loc}" if loc else ""
        raise TypeInferenceError(f"{op}{where}: bad inputs or attributes ({e}); inputs: {', '.join(str(t) for t in input_types)}") from None
    return list(result) if isinstance(result, (tuple, list)) else [result]


# ---------------------------------------------------------------------------------------
# helpers shared by op records
# ---------------------------------------------------------------------------------------
def same_as(i: int = 0):
    """Inference: the output has the type of input i."""
    return lambda *types, **attrs: types[i]


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    """Numpy broadcasting; raises TypeInferenceError naming both shapes."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(rank):
        dims = {s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise TypeInferenceError(f"shapes {' and '.join(str(list(s)) for s in shapes)} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def norm_axis(axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < max(rank, 1):
        raise TypeInferenceError(f"{what} {axis} out of range for rank {rank}")
    return axis % rank if rank else 0


def norm_axes(axes, rank: int) -> tuple[int, ...]:
    """None means every axis; negative axes count from the end; result sorted, unique."""
    if axes is None:
        return tuple(range(rank))
    if isinstance(axes, int):
        axes = (axes,)
    out = sorted({norm_axis(a, rank) for a in axes})
    return tuple(out)


def rand(rng: np.random.Generator, *shape, dtype="float32", low=-1.0, high=1.0) -> np.ndarray:
    """Random sample input; floats uniform in [low, high)."""
    if np.dtype(dtype).kind == "f":
        return rng.uniform(low, high, size=shape).astype(dtype)
    if np.dtype(dtype).kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    return rng.integers(int(low), int(high), size=shape).astype(dtype)


def prod(xs) -> int:
    return math.prod(xs)
