"""`Tensor`: the symbolic tensor users, rewrite rules and gradient rules compute with.

A Tensor wraps an IR `Value` of the graph being built; operators and methods emit
graphc ops into that graph. Numpy arrays and Python numbers mixed in become
constants (Python numbers take the dtype of the tensor they meet).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import IRError
from .ir import GraphBuilder, TensorType, Value


class Parameter(np.ndarray):
    """A numpy array with a name: becomes a named constant (or graph input) when traced."""

    param_name: str

    def __new__(cls, name: str, array) -> "Parameter":
        obj = np.asarray(array).view(cls)
        obj.param_name = name
        return obj

    def __array_finalize__(self, obj):
        self.param_name = getattr(obj, "param_name", None)


def param(name: str, array) -> Parameter:
    """Name a weight array so traced graphs show it as ``%name`` and can lift it to an input."""
    return Parameter(name, array)


def as_value(a, builder: GraphBuilder, like_dtype: str | None = None) -> Value:
    if isinstance(a, Tensor):
        return a.value
    if isinstance(a, Value):
        return a
    if isinstance(a, Parameter):
        cache = builder.__dict__.setdefault("_param_cache", {})
        key = id(a)
        if key not in cache:
            cache[key] = (a, builder.const(np.asarray(a), name=a.param_name))
        return cache[key][1]
    if isinstance(a, (np.ndarray, np.generic)):  # numpy values keep their own dtype
        return builder.const(np.asarray(a))
    if isinstance(a, bool):
        return builder.const(np.array(a, dtype=np.bool_))
    if isinstance(a, (int, float)):
        dtype = like_dtype or ("f32" if isinstance(a, float) else "i64")
        return builder.const(a, dtype=dtype)
    raise IRError(f"cannot use a {type(a).__name__} as a graphc tensor")


class Tensor:
    __slots__ = ("value",)
    __array_priority__ = 1000  # make numpy defer to our reflected operators

    def __init__(self, value: Value):
        self.value = value

    # -- metadata ----------------------------------------------------------------------
    @property
    def type(self) -> TensorType:
        return self.value.type

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def dtype(self) -> str:
        return self.value.dtype

    @property
    def ndim(self) -> int:
        return len(self.value.shape)

    def __repr__(self) -> str:
        return f"Tensor({self.value.type})"

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __bool__(self):
        raise IRError("a traced tensor has no truth value: data-dependent Python control flow cannot be traced (use graphc.ops.where)")

    def __iter__(self):
        raise IRError("iterating over a traced tensor is not supported (index it explicitly, or use split)")

    # -- arithmetic ----------------------------------------------------------------------
    def __add__(self, o):
        return _ops().add(self, o)

    def __radd__(self, o):
        return _ops().add(_scalar_like(o, self), self)

    def __sub__(self, o):
        return _ops().sub(self, o)

    def __rsub__(self, o):
        return _ops().sub(_scalar_like(o, self), self)

    def __mul__(self, o):
        return _ops().mul(self, o)

    def __rmul__(self, o):
        return _ops().mul(_scalar_like(o, self), self)

    def __truediv__(self, o):
        return _ops().div(self, o)

    def __rtruediv__(self, o):
        return _ops().div(_scalar_like(o, self), self)

    def __pow__(self, o):
        return _ops().pow(self, o)

    def __matmul__(self, o):
        return _ops().matmul(self, o)

    def __rmatmul__(self, o):
        return _ops().matmul(o, self)

    def __neg__(self):
        return _ops().neg(self)

    def __abs__(self):
        return _ops().abs(self)

    def __lt__(self, o):
        return _ops().less(self, o)

    def __le__(self, o):
        return _ops().less_equal(self, o)

    def __gt__(self, o):
        return _ops().greater(self, o)

    def __ge__(self, o):
        return _ops().greater_equal(self, o)

    # `==` stays identity (Tensors are used as dict keys); use .eq()/.ne()
    __hash__ = object.__hash__

    def eq(self, o):
        return _ops().equal(self, o)

    def ne(self, o):
        return _ops().not_equal(self, o)

    # -- shape methods --------------------------------------------------------------------
    def reshape(self, *shape):
        shape = _shape_arg(shape)
        return _ops().reshape(self, shape=resolve_reshape(self.shape, shape))

    def view(self, *shape):
        return self.reshape(*shape)

    def transpose(self, *axes):
        """``t.transpose(a, b)`` swaps two axes (torch); ``t.transpose((p0, p1, ...))`` permutes (numpy)."""
        if not axes:
            return self.T
        if len(axes) == 2 and all(isinstance(a, int) for a in axes):
            a, b = (ax % self.ndim for ax in axes)
            perm = list(range(self.ndim))
            perm[a], perm[b] = perm[b], perm[a]
            return _ops().transpose(self, perm=tuple(perm))
        return _ops().transpose(self, perm=_shape_arg(axes))

    def permute(self, *perm):
        return _ops().transpose(self, perm=tuple(_shape_arg(perm)))

    @property
    def T(self):
        return _ops().transpose(self, perm=tuple(reversed(range(self.ndim))))

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        return _ops().flatten(self, start_dim=start_dim, end_dim=end_dim)

    def squeeze(self, axes=None):
        if axes is None:
            axes = tuple(i for i, d in enumerate(self.shape) if d == 1)
        return _ops().squeeze(self, axes=(axes,) if isinstance(axes, int) else tuple(axes))

    def unsqueeze(self, axis: int):
        return _ops().unsqueeze(self, axes=(axis,))

    def broadcast_to(self, shape):
        return _ops().broadcast_to(self, shape=tuple(shape))

    def astype(self, dtype: str):
        return _ops().cast(self, dtype=dtype)

    def __getitem__(self, index):
        return _getitem(self, index)

    # -- reductions and common functions -------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        return _ops().sum(self, axes=_axes(axis), keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return _ops().mean(self, axes=_axes(axis), keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return _ops().max(self, axes=_axes(axis), keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return _ops().min(self, axes=_axes(axis), keepdims=keepdims)

    def relu(self):
        return _ops().relu(self)

    def exp(self):
        return _ops().exp(self)

    def log(self):
        return _ops().log(self)

    def sqrt(self):
        return _ops().sqrt(self)

    def softmax(self, axis: int = -1):
        return _ops().softmax(self, axis=axis)


def _ops():
    from . import ops

    return ops


def _scalar_like(o, t: Tensor):
    """Materialize a Python number on the left of an operator with the tensor's dtype."""
    if isinstance(o, (int, float, bool, np.number)):
        from .ir import current_builder

        return Tensor(current_builder().const(o, dtype=t.dtype))
    return o


def _axes(axis):
    if axis is None:
        return None
    return (axis,) if isinstance(axis, int) else tuple(axis)


def _shape_arg(shape) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def resolve_reshape(in_shape: Sequence[int], shape: Sequence[int]) -> tuple[int, ...]:
    """Resolve one -1 in a target shape (as torch and numpy do)."""
    shape = list(shape)
    if shape.count(-1) > 1:
        raise IRError(f"reshape to {shape}: at most one -1 allowed")
    total = int(np.prod(in_shape, dtype=np.int64))
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
        if known == 0 or total % known:
            raise IRError(f"cannot reshape {list(in_shape)} to {shape}")
        shape[shape.index(-1)] = total // known
    return tuple(shape)


def _getitem(t: Tensor, index) -> Tensor:
    """Basic indexing: ints, slices with steps, None and Ellipsis (no advanced indexing)."""
    if not isinstance(index, tuple):
        index = (index,)
    if any(isinstance(i, (Tensor, np.ndarray, list)) for i in index):
        raise IRError("advanced (tensor) indexing is not supported by tracing; use graphc.ops.gather")
    n_real = sum(1 for i in index if i is not None and i is not Ellipsis)
    if Ellipsis in index:
        k = index.index(Ellipsis)
        index = index[:k] + (slice(None),) * (t.ndim - n_real) + index[k + 1 :]
    index = index + (slice(None),) * (t.ndim - sum(1 for i in index if i is not None))
    starts, ends, steps, axes, squeeze_axes, new_axes = [], [], [], [], [], []
    dim = 0
    out_pos = 0
    for i in index:
        if i is None:
            new_axes.append(out_pos)
            out_pos += 1
            continue
        size = t.shape[dim]
        if isinstance(i, (int, np.integer)):
            i = int(i)
            if not -size <= i < size:
                raise IRError(f"index {i} out of range for axis {dim} of size {size}")
            i %= size
            starts.append(i), ends.append(i + 1), steps.append(1), axes.append(dim)
            squeeze_axes.append(dim)
        elif isinstance(i, slice):
            s, e, st = i.indices(size)
            if (s, e, st) != (0, size, 1):
                starts.append(s), ends.append(e), steps.append(st), axes.append(dim)
            out_pos += 1
        else:
            raise IRError(f"unsupported index {i!r}")
        dim += 1
    ops = _ops()
    out = t
    if axes:
        # a negative step ending before index 0 is expressed with an end below -size (ONNX convention)
        ends = [e if not (st < 0 and e < 0) else -(2**62) for e, st in zip(ends, steps)]
        out = ops.slice(out, starts=tuple(starts), ends=tuple(ends), axes=tuple(axes), steps=tuple(steps))
    if squeeze_axes:
        out = ops.squeeze(out, axes=tuple(squeeze_axes))
    if new_axes:
        out = ops.unsqueeze(out, axes=tuple(new_axes))
    return out
