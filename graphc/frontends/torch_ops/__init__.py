"""ATen op converters, one module per family: one function per ATen op (several overloads may share one).

Each converter is registered with ``@aten("op.overload", ...)`` and called as
``fn(ctx, *args)`` with the node's arguments in the op schema's order, defaults filled
in (so a converter's parameters read like the schema; ``*_`` takes the trailing ones it
ignores: layout, device, memory_format...). Tensor arguments are graphc Tensors, lists
of tensors are lists; everything else is the Python value from the program. A converter
returns the output tensor(s), None for outputs graphc does not compute (the importer
fails if one of those is used). See `graphc.frontends.torch.AtenContext`.
"""
from __future__ import annotations

import importlib
import pkgutil

# every public module registers its converters on import (adding a family is adding a file)
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
