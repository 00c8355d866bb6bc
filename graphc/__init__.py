"""graphc: a compiler-style model graph optimizer and runtime on top of TVM.

The public API is loaded lazily so that ``graphc.runtime`` (which deployment
machines import with only the TVM runtime installed) never pulls in the TVM
compiler, torch or onnx.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    # IR
    "Graph": "graphc.ir",
    "Node": "graphc.ir",
    "Value": "graphc.ir",
    "TensorType": "graphc.ir",
    "GraphBuilder": "graphc.ir",
    "print_graph": "graphc.printer",
    "parse_graph": "graphc.printer",
    "verify": "graphc.verify",
    "to_networkx": "graphc.nxgraph",
    "to_dot": "graphc.nxgraph",
    # building graphs
    "Tensor": "graphc.tensor",
    "param": "graphc.tensor",
    "trace": "graphc.trace",
    "ops": None,  # submodules
    "nn": None,
    "runtime": None,
    "passes": None,
    "examples": None,
    "training": None,
    # frontends
    "from_onnx": "graphc.frontends.onnx",
    "from_torch": "graphc.frontends.torch",
    "SpecializingModel": "graphc.specialize",
    # compiling and running
    "compile": "graphc.compiler",
    "compile_train": "graphc.training",
    "Target": "graphc.targets",
    "run_graph": "graphc.runtime.interpreter",
    "load": "graphc.runtime",
    "GraphcError": "graphc.errors",
}


def __getattr__(name: str):
    if name in _LAZY:
        if _LAZY[name] is None:
            value = importlib.import_module(f"graphc.{name}")
        else:
            value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'graphc' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
