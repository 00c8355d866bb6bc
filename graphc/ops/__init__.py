"""graphc ops: every op record, importable as ``graphc.ops.<name>`` (calling one emits a node).

Families live in their own modules; importing this package registers them all.
Nothing here imports the TVM compiler (lowerings reach it lazily).
"""
from __future__ import annotations

from . import elementwise  # noqa: F401  (registers ops)
from .registry import ANCHOR, ELEMWISE, INJECTIVE, OPAQUE, REDUCE, REGISTRY, OpDef, Sample, defop, get_op  # noqa: F401

_FAMILIES = ("reduce", "shape", "linalg", "conv", "pool", "nn", "attention")
for _family in _FAMILIES:
    try:
        __import__(f"{__name__}.{_family}")
    except ModuleNotFoundError as _e:  # families still being written
        if _e.name != f"{__name__}.{_family}":
            raise

globals().update(REGISTRY)
