"""Runtime-only Python environments: what a deployment machine has.

A runtime-only *site* is a directory put on PYTHONPATH holding

    tvm/        the TVM package without libtvm_compiler.so; with TVM_USE_RUNTIME_LIB=1,
                `import tvm` loads libtvm_runtime.so and nothing that compiles
    tvm_ffi/, numpy/, typing_extensions, ml_dtypes (tvm's bfloat16 <-> numpy)
    graphc/     graphc as installed (runtime/ and passes/ mapped in as graphc.runtime, graphc.passes)

and the interpreter runs with -S (no site-packages), so torch, onnx or the full TVM cannot
leak in: the layout tests/runtime/test_runtime_only.py builds from this machine's packages,
which `graphc.testing.qemu` builds from aarch64 wheels for an emulated ARM machine.
`graphc.testing.runtime_probe` runs a graphc command there and reports what was loaded.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

COMPILER_LIB = "libtvm_compiler.so"


def link_graphc(dest: Path) -> Path:
    """dest/graphc laid out as an installed graphc (also from an editable checkout, whose
    runtime/ and passes/ live beside graphc/ rather than in it). Returns dest."""
    import graphc

    src = Path(graphc.__file__).parent
    pkg = dest / "graphc"
    pkg.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.name != "__pycache__":
            os.symlink(item, pkg / item.name)
    for sub in ("runtime", "passes"):
        real = Path(importlib.util.find_spec(f"graphc.{sub}").origin).parent
        if real != src / sub:
            os.symlink(real, pkg / sub)
    return dest


def host_site(dest: Path) -> Path:
    """A runtime-only site for this machine, from the installed packages (symlinked): tvm minus
    libtvm_compiler.so, tvm_ffi, numpy and its small pure-Python companions, and graphc. Returns dest."""
    import numpy
    import tvm
    import tvm_ffi

    tvm_src = Path(tvm.__file__).parent
    for root, _, files in os.walk(tvm_src):
        rel = Path(root).relative_to(tvm_src)
        (dest / "tvm" / rel).mkdir(parents=True, exist_ok=True)
        for f in files:
            if f != COMPILER_LIB and not f.endswith(".pyc"):
                os.symlink(Path(root) / f, dest / "tvm" / rel / f)
    os.symlink(Path(tvm_ffi.__file__).parent, dest / "tvm_ffi")
    packages = Path(numpy.__file__).parent.parent
    for name in os.listdir(packages):
        if name.startswith(("numpy", "typing_extensions", "ml_dtypes")):
            os.symlink(packages / name, dest / name)
    return link_graphc(dest)


def runtime_only_env(pythonpath: list[Path]) -> dict[str, str]:
    """The environment for a runtime-only interpreter: no inherited PYTHON* settings, the
    given PYTHONPATH, and TVM told to load its runtime library only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(
        PYTHONPATH=os.pathsep.join(str(p) for p in pythonpath),
        PYTHONNOUSERSITE="1",
        TVM_USE_RUNTIME_LIB="1",
    )
    return env
