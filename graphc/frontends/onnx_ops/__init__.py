"""ONNX op converters, one module per family: one function per ONNX op type (default domain), registered with `converter`.

Each converter gets a `NodeContext` (see graphc.frontends.onnx) and returns the node's
output tensor(s); None for optional outputs it does not compute (the importer fails
if one of those is used). Attributes that moved to inputs across opsets are read
through `attr_or_input`. Inputs that must be known at import time (shapes, axes,
pads...) are read with ``ctx.const``/``ctx.ints``, which fail naming the node and input.
"""
from __future__ import annotations

import importlib
import pkgutil

# every public module registers its converters on import (adding a family is adding a file)
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
