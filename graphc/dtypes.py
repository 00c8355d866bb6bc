"""graphc dtype names and their numpy / TVM spellings.

graphc uses short names in its IR text (`f32[2,3]`); numpy and TVM use their own.
This table is the only place that knows all three.
"""
from __future__ import annotations

import numpy as np

from .errors import IRError

try:  # bf16 has no numpy dtype of its own; ml_dtypes (a TVM dependency) provides one
    import ml_dtypes

    _BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - ml_dtypes ships with tvm and onnx
    _BF16 = None

# graphc name -> (numpy dtype, TVM dtype string)
_TABLE: dict[str, tuple[np.dtype | None, str]] = {
    "f32": (np.dtype(np.float32), "float32"),
    "f16": (np.dtype(np.float16), "float16"),
    "bf16": (_BF16, "bfloat16"),
    "f64": (np.dtype(np.float64), "float64"),
    "i64": (np.dtype(np.int64), "int64"),
    "i32": (np.dtype(np.int32), "int32"),
    "i16": (np.dtype(np.int16), "int16"),
    "i8": (np.dtype(np.int8), "int8"),
    "u64": (np.dtype(np.uint64), "uint64"),
    "u32": (np.dtype(np.uint32), "uint32"),
    "u16": (np.dtype(np.uint16), "uint16"),
    "u8": (np.dtype(np.uint8), "uint8"),
    "bool": (np.dtype(np.bool_), "bool"),
}

DTYPES: tuple[str, ...] = tuple(_TABLE)
FLOAT_DTYPES = frozenset({"f32", "f16", "bf16", "f64"})
INT_DTYPES = frozenset({"i64", "i32", "i16", "i8", "u64", "u32", "u16", "u8"})
UNSIGNED_DTYPES = frozenset({"u64", "u32", "u16", "u8"})

_FROM_NUMPY = {v[0]: k for k, v in _TABLE.items() if v[0] is not None}
_FROM_TVM = {v[1]: k for k, v in _TABLE.items()}


def check(dtype: str) -> str:
    if dtype not in _TABLE:
        raise IRError(f"unknown dtype {dtype!r}; graphc dtypes are {', '.join(DTYPES)}")
    return dtype


def to_numpy(dtype: str) -> np.dtype:
    np_dtype = _TABLE[check(dtype)][0]
    if np_dtype is None:  # pragma: no cover
        raise IRError(f"dtype {dtype} needs the ml_dtypes package")
    return np_dtype


def to_tvm(dtype: str) -> str:
    return _TABLE[check(dtype)][1]


def from_numpy(np_dtype) -> str:
    key = np.dtype(np_dtype)
    if key not in _FROM_NUMPY:
        raise IRError(f"numpy dtype {key} has no graphc equivalent (supported: {', '.join(DTYPES)})")
    return _FROM_NUMPY[key]


def from_tvm(tvm_dtype: str) -> str:
    if tvm_dtype not in _FROM_TVM:
        raise IRError(f"TVM dtype {tvm_dtype} has no graphc equivalent")
    return _FROM_TVM[tvm_dtype]


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES


def is_int(dtype: str) -> bool:
    return dtype in INT_DTYPES


def is_unsigned(dtype: str) -> bool:
    return dtype in UNSIGNED_DTYPES
