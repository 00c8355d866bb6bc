"""Run a graphc command in this interpreter, then record what the process loaded.

    python -S -m graphc.testing.runtime_probe REPORT.json run model.gca --input x=x.npy --save out.npz

Used inside runtime-only environments (`graphc.testing.runtime_only`, `graphc.testing.qemu`)
so a test can check that an artifact ran with the TVM runtime alone: the report says which
machine this was, whether libtvm_runtime / libtvm_compiler are mapped into the process, and
which heavy Python packages got imported. Imports nothing beyond the graphc command itself.
"""
from __future__ import annotations

import importlib.util
import json
import platform
import sys

HEAVY_PACKAGES = ("torch", "onnx", "onnxruntime", "transformers")


def loaded_report() -> dict:
    try:
        with open("/proc/self/maps") as f:
            maps = f.read()
    except OSError:  # pragma: no cover - not Linux
        maps = ""
    return {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "tvm_runtime_loaded": "libtvm_runtime" in maps,
        "tvm_compiler_loaded": "libtvm_compiler" in maps,
        "heavy_modules": sorted(m for m in sys.modules if m.split(".")[0] in HEAVY_PACKAGES),
        "heavy_importable": sorted(p for p in HEAVY_PACKAGES if importlib.util.find_spec(p) is not None),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    report_path, *command = argv
    from graphc.cli import main as graphc_main

    rc = graphc_main(command)
    with open(report_path, "w") as f:
        json.dump({"returncode": rc, **loaded_report()}, f, indent=1)
    return rc


if __name__ == "__main__":
    sys.exit(main())
