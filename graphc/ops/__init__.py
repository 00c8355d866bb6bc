"""graphc ops: every op record, importable as ``graphc.ops.<name>`` (calling one emits a node).

Each op family lives in its own module in this package; every public module is
imported here (so adding a family is adding a file). Nothing here imports the TVM
compiler (lowerings reach it lazily).
"""
from __future__ import annotations

import importlib
import pkgutil

from .registry import ANCHOR, ELEMWISE, INJECTIVE, OPAQUE, REDUCE, REGISTRY, OpDef, Sample, defop, get_op  # noqa: F401

_HELPER_MODULES = {"registry", "window", "te_util"}  # shared code, no op records

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_") and _info.name not in _HELPER_MODULES:
        importlib.import_module(f"{__name__}.{_info.name}")

globals().update(REGISTRY)
