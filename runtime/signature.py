"""Binding user inputs to a graph or artifact signature, with errors that name the input.

Shared by the reference interpreter and compiled sessions so both reject the same
mistakes the same way: unknown or missing names, wrong counts, shapes or dtypes.
Non-contiguous arrays are accepted (copied to contiguous memory); values are never
silently cast.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from graphc import dtypes
from graphc.errors import InputError


def bind_inputs(
    names: Sequence[str],
    types: Sequence[Any],  # TensorType-like: .dtype (graphc name) and .shape
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    what: str = "model",
) -> list[np.ndarray]:
    kwargs = dict(kwargs or {})
    if len(args) > len(names):
        raise InputError(f"{what} takes {len(names)} input(s) ({', '.join(names)}), got {len(args)} positional")
    bound: dict[str, Any] = dict(zip(names, args))
    for k, v in kwargs.items():
        if k not in names:
            raise InputError(f"{what} has no input named {k!r}; its inputs are: {', '.join(names)}")
        if k in bound:
            raise InputError(f"input {k!r} given both by position and by name")
        bound[k] = v
    missing = [n for n in names if n not in bound]
    if missing:
        raise InputError(f"{what} is missing input(s): {', '.join(missing)} (expects {', '.join(names)})")
    out = []
    for name, ty in zip(names, types):
        out.append(check_array(name, ty, bound[name]))
    return out


def check_array(name: str, ty: Any, value: Any) -> np.ndarray:
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    try:
        got = dtypes.from_numpy(arr.dtype)
    except Exception:
        got = str(arr.dtype)
    expected_shape = tuple(ty.shape)
    if got != ty.dtype:
        raise InputError(f"input {name!r}: expected dtype {ty.dtype}, got {got} (cast it explicitly, e.g. x.astype(np.{dtypes.to_numpy(ty.dtype)}))")
    if tuple(arr.shape) != expected_shape:
        raise InputError(f"input {name!r}: expected shape {list(expected_shape)}, got {list(arr.shape)}")
    return np.asarray(arr, order="C")  # (ascontiguousarray would turn 0-d into 1-d)
