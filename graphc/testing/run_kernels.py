"""Run the kernels of a compiled TVM library on saved arguments, with the TVM runtime alone.

    python -S -m graphc.testing.run_kernels LIB.so ARGS.npz OUT.npz

ARGS.npz holds, for each kernel NAME (a function exported by LIB.so), its inputs as
``NAME/in0``, ``NAME/in1``... and one array per output as ``NAME/out0``... (only their shapes
and dtypes matter). OUT.npz receives each kernel's computed outputs under the same
``NAME/outK`` keys, or ``NAME/error`` with the message when the call raised (the other kernels
still run). This is how every op's kernel is checked on an emulated aarch64 machine: one
library, one interpreter start, hundreds of kernels.

.npy files cannot say "bfloat16" (ml_dtypes' types save as raw bytes), so both files go
through `encode`/`decode`: such arrays are stored as their bits under ``KEY@DTYPE``.
"""
from __future__ import annotations

import sys
from collections import defaultdict

import numpy as np


def encode(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for key, a in arrays.items():
        a = np.asarray(a)
        if a.dtype.kind == "V":  # bfloat16, float8_*: keep the bits, name the type
            out[f"{key}@{a.dtype.name}"] = a.view(f"u{a.dtype.itemsize}")
        else:
            out[key] = a
    return out


def decode(arrays) -> dict[str, np.ndarray]:
    out = {}
    for key, a in arrays.items():
        if "@" in key:
            import ml_dtypes

            key, _, dtype = key.partition("@")
            a = a.view(getattr(ml_dtypes, dtype))
        out[key] = a
    return out


def run_kernels(lib_path: str, args_path: str, out_path: str) -> int:
    import tvm.runtime

    lib = tvm.runtime.load_module(lib_path)
    dev = tvm.cpu(0)
    kernels: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    with np.load(args_path) as z:
        for key, a in decode({k: z[k] for k in z.files}).items():
            name, _, slot = key.rpartition("/")
            kernels[name][slot] = a
    results: dict[str, np.ndarray] = {}
    for name, slots in kernels.items():
        ins = [slots[f"in{i}"] for i in range(sum(s.startswith("in") for s in slots))]
        outs = [slots[f"out{i}"] for i in range(sum(s.startswith("out") for s in slots))]
        try:
            out_tensors = [tvm.runtime.empty(o.shape, str(o.dtype), dev) for o in outs]
            lib[name](*[tvm.runtime.tensor(np.array(a, order="C"), dev) for a in ins], *out_tensors)  # (0-d stays 0-d)
            for i, t in enumerate(out_tensors):
                results[f"{name}/out{i}"] = t.numpy()
        except Exception as e:  # noqa: BLE001 - record it and keep checking the other kernels
            results[f"{name}/error"] = np.array(f"{type(e).__name__}: {e}"[:2000])
    np.savez(out_path, **encode(results))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    return run_kernels(*argv)


if __name__ == "__main__":
    sys.exit(main())
