"""Run the packaged CUDA artifacts on this machine's GPU: numerics, then graphc vs PyTorch.

    python3 scripts/gpu/run_on_gpu.py                  # from the repo root; writes $OUT/gpu_results.json
    python3 scripts/gpu/run_on_gpu.py --models mlp,cnn --rounds 7 --iters 20 --no-compile

Needs Python with numpy (torch for the baselines; transformers for the Hugging Face
baselines); TVM comes from the carry (.gpu/, built by scripts/gpu/package.py): the
runtime-only TVM package, TVM's FFI from the carried cp312 wheel (extracted into a temp
dir), and graphc from this checkout with the package layout an install would give.

For each model: rebuild the parameters from their recipes (every one checked against
the content hash recorded when packaging), load the library with graphc.runtime on the
device, compare the outputs with PyTorch's (computed on the packaging machine's CPU),
then time graphc, PyTorch eager and torch.compile on the same GPU in interleaved rounds
(median per call). Results are written after every model, so a run cut short keeps
what it measured. Exit status 1 if any model failed its numerics or did not run.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import portable  # noqa: E402


# ---------------------------------------------------------------------------------------
# environment: TVM runtime, FFI and graphc without installing anything
# ---------------------------------------------------------------------------------------
def _importable(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _graphc_site(tmp: Path) -> Path:
    """tmp/graphc: this checkout laid out as installed (runtime/ and passes/ inside graphc/)."""
    pkg = tmp / "graphc"
    pkg.mkdir(parents=True)
    for item in (REPO / "graphc").iterdir():
        if item.name != "__pycache__":
            os.symlink(item, pkg / item.name)
    for sub in ("runtime", "passes"):
        if not (pkg / sub).exists():
            os.symlink(REPO / sub, pkg / sub)
    return tmp


def bootstrap(carry: Path, tmp: Path) -> list[str]:
    """Make tvm (runtime only), tvm_ffi and graphc importable; returns what came from where."""
    notes = []
    if not _importable("tvm"):
        os.environ["TVM_USE_RUNTIME_LIB"] = "1"  # libtvm_runtime.so only; the carry has no compiler
        sys.path.insert(0, str(carry / "site"))
        notes.append(f"tvm: runtime only, from {carry / 'site'}")
    if not _importable("tvm_ffi"):
        wheels = sorted((carry / "wheels").glob("apache_tvm_ffi-*.whl"))
        if not wheels:
            raise SystemExit(f"no apache-tvm-ffi wheel in {carry / 'wheels'}: run scripts/gpu/package.py")
        ffi_dir = tmp / "ffi"
        with zipfile.ZipFile(wheels[0]) as z:  # a wheel is a zip laid out for site-packages
            z.extractall(ffi_dir)
        sys.path.insert(0, str(ffi_dir))
        notes.append(f"tvm_ffi: {wheels[0].name}, extracted to {ffi_dir}")
    if not _importable("graphc.runtime"):
        sys.path.insert(0, str(_graphc_site(tmp / "graphc-site")))
        notes.append(f"graphc: {REPO}")
    return notes


def preload_cudart(carry: Path) -> str | None:
    """The carried CUDA 13 runtime, for TVM's CUDA module, unless the system has one."""
    lib = carry / "lib" / "libcudart.so.13"
    try:
        ctypes.CDLL("libcudart.so.13", mode=ctypes.RTLD_GLOBAL)
        return "system"
    except OSError:
        pass
    if lib.exists():
        ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
        return str(lib)
    return None


# ---------------------------------------------------------------------------------------
# one packaged model
# ---------------------------------------------------------------------------------------
class Packaged:
    def __init__(self, folder: Path):
        self.folder = folder
        self.manifest = json.loads((folder / "model.json").read_text())
        self.name = self.manifest["name"]
        self.inputs = list(np.load(folder / "inputs.npz").values())
        expected = np.load(folder / "expected.npz")
        self.expected = [expected[f"out{i}"] for i in range(len(expected.files))]

    def params(self) -> list[np.ndarray]:
        """Every parameter, rebuilt from its recipe (or read raw) and checked against its hash."""
        from graphc.errors import ArtifactError
        from graphc.ir import const_hash

        raw = np.load(self.folder / "raw.npz")
        recipes = self.manifest["recipes"]
        out = []
        for p in self.manifest["params"]:
            arr = raw[p["raw"]] if "raw" in p else portable.build(recipes[p["state_key"]]).reshape(p["shape"])
            if const_hash(arr) != p["hash"]:
                raise ArtifactError(f"{self.name}: parameter {p['name']} rebuilt with content hash {const_hash(arr)}, "
                                    f"not the packaged {p['hash']}: the weights differ from the compiled ones")
            out.append(arr)
        return out

    def artifact(self):
        from graphc.runtime.artifact import ArtifactData, TensorSpec

        m = self.manifest
        params = [(TensorSpec(p["name"], p["dtype"], tuple(p["shape"])), a) for p, a in zip(m["params"], self.params())]
        return ArtifactData(
            target=m["target"],
            inputs=[TensorSpec.from_json(s) for s in m["inputs"]],
            outputs=[TensorSpec.from_json(s) for s in m["outputs"]],
            lib=(self.folder / "lib.so").read_bytes(),
            params=params,
            meta=m["meta"],
            graphc_version=m["graphc_version"],
        )


def compare(actual: list[np.ndarray], expected: list[np.ndarray], rtol: float, atol: float) -> dict:
    """Per output: max abs error, and whether |a - e| <= atol * max(1, max|e|) + rtol * |e| everywhere."""
    rows, ok = [], len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected)):
        if a.shape != e.shape:
            rows.append({"output": i, "ok": False, "error": f"shape {a.shape} != expected {e.shape}"})
            ok = False
            continue
        a64, e64 = a.astype(np.float64), e.astype(np.float64)
        scale = max(1.0, float(np.max(np.abs(e64)))) if e64.size else 1.0
        err = np.abs(a64 - e64)
        good = bool(np.all(err <= atol * scale + rtol * np.abs(e64))) and not np.isnan(a64).any()
        rows.append({"output": i, "ok": good, "max_abs_err": float(err.max()) if err.size else 0.0, "scale": scale})
        ok = ok and good
    return {"ok": ok, "outputs": rows}


def interleaved(runners: dict, sync, rounds: int, iters: int, warmup: int = 3) -> dict[str, dict]:
    """Median (and min) milliseconds per call of each runner, timed in interleaved rounds."""
    for fn in runners.values():
        for _ in range(warmup):
            fn()
        sync()
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(rounds):
        for name, fn in runners.items():
            sync()
            t0 = time.perf_counter()
            for _ in range(iters):
                fn()
            sync()
            times[name].append((time.perf_counter() - t0) * 1e3 / iters)
    return {k: {"median_ms": statistics.median(v), "min_ms": min(v), "rounds": rounds, "iters": iters} for k, v in times.items()}


def torch_runners(name: str, manifest: dict, expected: list[np.ndarray], device: str, use_compile: bool) -> tuple[dict, dict]:
    """PyTorch eager (and torch.compile) runners on the same weights, or ({}, {why: ...})."""
    try:
        import models
        import torch
    except ImportError as e:
        return {}, {"torch": f"skipped: {e}"}
    try:
        module, inputs, _ = models.build(name, manifest["recipes"])
    except Exception as e:  # noqa: BLE001 - transformers missing, most likely: graphc's results stand alone
        return {}, {"torch": f"skipped: cannot build the PyTorch model here ({type(e).__name__}: {e})"}
    module = module.to(device)
    tensors = {k: torch.from_numpy(v).to(device) for k, v in inputs.items()}
    out, notes = {}, {}

    def runner(mod):
        def call():
            with torch.no_grad():
                return models.torch_call(name, mod, tensors)

        return call

    out["torch_eager"] = runner(module)
    # PyTorch on this device against the same expected outputs: tells a graphc bug from a loose tolerance
    notes["torch_numerics"] = compare(models.torch_outputs(name, module, inputs, device), expected, **manifest["tolerance"])
    if use_compile:
        try:
            compiled = torch.compile(module)
            t0 = time.perf_counter()
            runner(compiled)()  # compile now, not in the first timed round
            notes["torch_compile_s"] = time.perf_counter() - t0
            out["torch_compile"] = runner(compiled)
        except Exception as e:  # noqa: BLE001 - report and go on with eager
            notes["torch_compile"] = f"failed: {type(e).__name__}: {str(e)[:300]}"
    return out, notes


def run_model(pkg: Packaged, device: str, bench: bool, rounds: int, iters: int, use_compile: bool) -> dict:
    from graphc.runtime.session import session_from_artifact

    m = pkg.manifest
    result = {"model": pkg.name, "description": m["description"], "target": m["target"],
              "kernels": [{"name": k["name"], "label": k["label"], "notes": k["notes"]} for k in m["meta"]["kernels"]]}
    t0 = time.perf_counter()
    sess = session_from_artifact(pkg.artifact(), device, source=str(pkg.folder))
    result["load_s"] = time.perf_counter() - t0
    actual = sess.run(*pkg.inputs)
    result["numerics"] = compare(actual, pkg.expected, **m["tolerance"])
    if not bench:
        return result
    runners = {"graphc": sess.prepared(*pkg.inputs)}
    torch_device = "cuda:0" if device.startswith("cuda") else "cpu"
    extra, notes = torch_runners(pkg.name, m, pkg.expected, torch_device, use_compile)
    result.update(notes)
    runners.update(extra)

    def sync():
        sess.device.sync()
        if extra:
            import torch

            if torch_device.startswith("cuda"):
                torch.cuda.synchronize()

    result["timings"] = interleaved(runners, sync, rounds, iters)
    return result


def cuda_driver_version() -> str | None:
    """The driver's CUDA version ("13.0"): the CUDA 13 runtime TVM uses needs 13.0 or newer (driver 580+)."""
    try:
        v = ctypes.c_int()
        if ctypes.CDLL("libcuda.so.1").cuDriverGetVersion(ctypes.byref(v)) == 0:
            return f"{v.value // 1000}.{v.value % 1000 // 10}"
    except (OSError, AttributeError):
        pass
    return None


def device_info(device: str) -> dict:
    info = {"device": device, "host": platform.node(), "python": platform.python_version()}
    if device.startswith("cuda"):
        info["cuda_driver"] = cuda_driver_version()
    try:
        import torch

        info["torch"] = torch.__version__
        if device.startswith("cuda") and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["cuda_runtime_torch"] = torch.version.cuda
    except ImportError:
        pass
    if device.startswith("cuda") and "gpu" not in info:
        try:
            import tvm

            info["gpu"] = tvm.cuda(0).device_name
        except Exception:  # noqa: BLE001 - no GPU: the models will say so
            pass
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--carry", default=str(REPO / ".gpu"))
    ap.add_argument("--out", default=os.environ.get("OUT", "."), help="where gpu_results.json goes (default: $OUT)")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--models", default="", help="comma-separated (default: every packaged model)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--no-bench", action="store_true", help="numerics only")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile (it takes minutes per model)")
    args = ap.parse_args(argv)

    carry = Path(args.carry)
    if not (carry / "models").is_dir():
        print(f"no packaged models in {carry}: run scripts/gpu/package.py first", file=sys.stderr)
        return 2
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    out_path = out_dir / "gpu_results.json"
    tmp = Path(tempfile.mkdtemp(prefix="graphc-gpu-"))
    report = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "environment": bootstrap(carry, tmp)}
    if args.device.startswith("cuda"):
        report["cudart"] = preload_cudart(carry)
    index = carry / "index.json"
    report["package"] = json.loads(index.read_text()) if index.exists() else {}
    report.update(device_info(args.device))
    names = [n for n in args.models.split(",") if n] or sorted(p.name for p in (carry / "models").iterdir())
    report["results"] = []
    failed = 0
    for name in names:
        t0 = time.perf_counter()
        try:
            res = run_model(Packaged(carry / "models" / name), args.device, not args.no_bench, args.rounds, args.iters,
                            not args.no_compile)
        except Exception as e:  # noqa: BLE001 - one model's failure is recorded; the others still run
            res = {"model": name, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-3000:]}
        res["seconds"] = time.perf_counter() - t0
        ok = res.get("numerics", {}).get("ok", False)
        failed += not ok
        report["results"].append(res)
        out_path.write_text(json.dumps(report, indent=1))
        timing = " ".join(f"{k} {v['median_ms']:.3f}ms" for k, v in res.get("timings", {}).items())
        print(f"{name}: {'ok' if ok else 'FAILED'} {res.get('error', '')} {timing}".rstrip(), flush=True)
    print(f"results: {out_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
