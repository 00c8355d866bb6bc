"""Lazy handles to TVM's compiler modules for op lowerings.

Op records must import without the TVM compiler (the reference interpreter in
graphc.runtime uses them on deployment machines that only have the TVM runtime),
so lowerings reach `te`, `topi` and `tir` through these proxies, which import the
real module on first attribute access.
"""
from __future__ import annotations

import importlib


class _LazyModule:
    def __init__(self, name: str):
        self._name = name
        self._mod = None

    def __getattr__(self, attr):
        if self._mod is None:
            self._mod = importlib.import_module(self._name)
        return getattr(self._mod, attr)


te = _LazyModule("tvm.te")
topi = _LazyModule("tvm.topi")
tir = _LazyModule("tvm.tirx")
ops = _LazyModule("graphc.ops")  # the op namespace, for gradient rules that use other families' ops


def expr_dtype(e) -> str:
    """dtype string of a TIR expression (TVM 0.27 exposes it as `.dtype` on some nodes, `.ty` on others)."""
    dt = getattr(e, "dtype", None)
    return str(dt) if dt is not None else str(e.ty)
