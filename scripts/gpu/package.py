"""Build the GPU carry folder: everything a GPU machine with Python 3.12, torch and numpy (no
TVM, no transformers, no compiler) needs to run graphc's CUDA artifacts and check them.

    python scripts/gpu/package.py                      # -> .gpu/ (git-ignored), all models
    python scripts/gpu/package.py --models mlp,cnn --out /tmp/carry --no-runtime

Layout of the carry (kept under 64 MiB, the device tool's limit):

    index.json                  what was packaged, for which arch, by which graphc commit
    models/<name>/lib.so        the compiled library (nvcc fatbins inside), as in the .gca
    models/<name>/model.json    target, signature, kernels, parameter table (each parameter
                                a state-dict recipe or a member of raw.npz, with its content
                                hash), the recipes, tolerances
    models/<name>/inputs.npz, expected.npz (PyTorch on this CPU), raw.npz
    site/tvm/                   the installed TVM minus libtvm_compiler.so (TVM_USE_RUNTIME_LIB=1)
    wheels/apache_tvm_ffi-...-cp312-...whl   TVM's FFI for the GPU machine's Python
    lib/libcudart.so.13         the CUDA runtime TVM's CUDA module is built against

The weights travel as recipes (scripts/gpu/portable.py): BERT-base alone is 440 MB.
Parameters that are not a state-dict tensor (a sliced position table, masks) travel raw;
the script fails, naming them, if that would break the size budget.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import models  # noqa: E402

BUDGET = 64 * 2**20
RAW_BUDGET = 4 * 2**20  # raw (non-recipe) parameter bytes allowed per model
FFI_WHEEL = "apache-tvm-ffi==0.1.14.post0"
CUDART = "libcudart.so.13"
RTOL = 1e-3  # GPU vs PyTorch-on-CPU: float32 with other summation orders and exp/tanh implementations
ATOL = 1e-4  # times max(1, the output's largest magnitude)


def _bytes_hash(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _quiet(*_a, **_k):
    pass


def _input_order(spec_names: list[str], inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The model inputs in the artifact's order: by name when the names match, else by position."""
    if all(n in inputs for n in spec_names):
        return [inputs[n] for n in spec_names]
    return list(inputs.values())


def package_model(name: str, dest: Path, target, log=print) -> dict:
    """Compile model `name` for `target` and write its folder under dest; returns its index entry."""
    import graphc
    from graphc.ir import const_hash

    t0 = time.perf_counter()
    module, inputs, recipes = models.build(name)
    expected = models.torch_outputs(name, module, inputs)
    compiled = graphc.compile(module, target=target, example_inputs=models.example_inputs(name, inputs), log=_quiet)
    art = compiled.artifact()
    if len(expected) != len(art.outputs):
        raise SystemExit(f"{name}: PyTorch returns {len(expected)} outputs, the artifact {len(art.outputs)}")
    state = module.state_dict()
    by_bytes = {_bytes_hash(state[k].detach().numpy()): k for k in recipes}
    params, raw = [], {}
    for i, (spec, arr) in enumerate(art.params):
        entry = {"name": spec.name, "dtype": spec.dtype, "shape": list(spec.shape), "hash": const_hash(arr)}
        key = by_bytes.get(_bytes_hash(arr)) if arr.dtype == np.float32 else None
        if key is not None:
            entry["state_key"] = key
        else:
            entry["raw"] = f"p{i}"
            raw[f"p{i}"] = arr
        params.append(entry)
    raw_bytes = sum(a.nbytes for a in raw.values())
    if raw_bytes > RAW_BUDGET:
        big = sorted(((a.nbytes, p["name"]) for p in params if "raw" in p for a in [raw[p["raw"]]]), reverse=True)[:5]
        raise SystemExit(f"{name}: {raw_bytes} bytes of parameters have no recipe (largest: {big})")
    out = dest / "models" / name
    out.mkdir(parents=True, exist_ok=True)
    (out / "lib.so").write_bytes(art.lib)
    ordered = _input_order([s.name for s in art.inputs], inputs)
    np.savez(out / "inputs.npz", **{s.name: a for s, a in zip(art.inputs, ordered)})
    np.savez(out / "expected.npz", **{f"out{i}": e for i, e in enumerate(expected)})
    np.savez(out / "raw.npz", **raw)
    manifest = {
        "name": name,
        "description": models.MODELS[name],
        "target": art.target,
        "inputs": [s.to_json() for s in art.inputs],
        "outputs": [s.to_json() for s in art.outputs],
        "params": params,
        "recipes": recipes,
        "meta": art.meta,
        "graphc_version": art.graphc_version,
        "tolerance": {"rtol": RTOL, "atol": ATOL},
        "lib_sha256": hashlib.sha256(art.lib).hexdigest(),
    }
    (out / "model.json").write_text(json.dumps(manifest, indent=1))
    size = sum(f.stat().st_size for f in out.iterdir())
    log(f"{name}: {len(art.meta['kernels'])} kernels, {len(params)} parameters ({len(raw)} raw, {raw_bytes} bytes), "
        f"{size / 2**20:.1f} MiB, {time.perf_counter() - t0:.0f}s")
    return {"name": name, "bytes": size, "kernels": len(art.meta["kernels"])}


def copy_runtime_tvm(dest: Path) -> int:
    """dest/site/tvm: the installed TVM package without its compiler library or bytecode caches."""
    import tvm

    src = Path(tvm.__file__).parent
    site = dest / "site" / "tvm"
    if site.exists():
        shutil.rmtree(site)
    # 3rdparty/, src/, include/, web/: C++ headers and sources for compiling, 30 MB the runtime never reads
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "libtvm_compiler.so", "3rdparty", "src", "include", "web")
    shutil.copytree(src, site, ignore=skip)
    return sum(f.stat().st_size for f in site.rglob("*") if f.is_file())


def fetch_ffi_wheel(dest: Path) -> Path:
    wheels = dest / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    have = sorted(wheels.glob("apache_tvm_ffi-*-cp312-*.whl"))
    if have:
        return have[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
           "--implementation", "cp", "--platform", "manylinux_2_28_x86_64", "-d", str(wheels), FFI_WHEEL]
    subprocess.run(cmd, check=True, capture_output=True)
    return sorted(wheels.glob("apache_tvm_ffi-*-cp312-*.whl"))[0]


def copy_cudart(dest: Path) -> Path | None:
    for d in ("/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"):
        src = Path(d) / CUDART
        if src.exists():
            (dest / "lib").mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / "lib" / CUDART)
            return dest / "lib" / CUDART
    return None


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(REPO / ".gpu"), help="the carry folder (default: .gpu in the repo)")
    ap.add_argument("--models", default=",".join(models.DEFAULT), help=f"comma-separated, from: {', '.join(models.MODELS)}")
    ap.add_argument("--arch", default="sm_90", help="GPU architecture (H100/H200: sm_90)")
    ap.add_argument("--target", default="cuda", help="cuda; x86 packages CPU artifacts (tests the runner without a GPU)")
    ap.add_argument("--no-runtime", action="store_true", help="models only: no TVM runtime copy, ffi wheel or cudart")
    args = ap.parse_args(argv)

    from graphc.targets import resolve

    dest = Path(args.out)
    dest.mkdir(parents=True, exist_ok=True)
    target = resolve(args.target, arch=args.arch) if args.target == "cuda" else resolve(args.target)
    names = [n for n in args.models.split(",") if n]
    entries = [package_model(n, dest, target) for n in names]
    extras = {}
    if not args.no_runtime:
        extras["tvm_runtime_bytes"] = copy_runtime_tvm(dest)
        extras["ffi_wheel"] = fetch_ffi_wheel(dest).name
        cudart = copy_cudart(dest)
        extras["cudart"] = cudart.name if cudart else None
    index = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "graphc_commit": _git_commit(),
             "target": target.to_json(), "models": entries, **extras}
    (dest / "index.json").write_text(json.dumps(index, indent=1))
    total = folder_bytes(dest)
    print(f"carry {dest}: {total / 2**20:.1f} MiB ({len(entries)} models)")
    if total > BUDGET:
        print(f"error: the carry is over {BUDGET // 2**20} MiB: package fewer models (--models)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
