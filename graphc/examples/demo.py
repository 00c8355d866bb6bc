"""The README's main job: seed CNN -> ONNX -> `graphc compile --target x86` -> run, vs PyTorch.

    python -m graphc.examples.demo [--workdir build/demo] [--repeat 30]

Builds the seed CNN in PyTorch with fixed random weights, exports it to ONNX,
compiles it with the graphc CLI, runs the artifact, and prints the max abs
difference against PyTorch and the latency of both (median of interleaved runs).
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time

import numpy as np


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=os.path.join("build", "demo"))
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args(argv)
    os.makedirs(args.workdir, exist_ok=True)

    import torch

    from graphc.examples.seeds import CNN_INPUT, export_onnx, random_input, torch_cnn

    model = torch_cnn(seed=0)
    x = random_input(CNN_INPUT, seed=1)
    onnx_path = os.path.join(args.workdir, "model.onnx")
    gca_path = os.path.join(args.workdir, "model.gca")
    print(f"[1/4] seed CNN (PyTorch, fixed random weights) -> {onnx_path}")
    export_onnx(model, x, onnx_path)

    cmd = [sys.executable, "-m", "graphc.cli", "compile", onnx_path, "--target", "x86", "-o", gca_path]
    print(f"[2/4] $ graphc {' '.join(shlex.quote(c) for c in cmd[3:])}")
    subprocess.run(cmd, check=True)

    print(f"[3/4] run {gca_path}")
    import graphc.runtime

    sess = graphc.runtime.load(gca_path)
    (out,) = sess.run(x)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    diff = float(np.max(np.abs(out - ref)))
    print(f"      output {out.shape} {out.dtype}; max abs diff vs PyTorch: {diff:.3e}")

    print(f"[4/4] latency, batch {CNN_INPUT[0]} (median of {args.repeat} interleaved rounds, {torch.get_num_threads()} threads)")
    xt = torch.from_numpy(x)
    for _ in range(3):
        sess.run(x)
        with torch.no_grad():
            model(xt)
    g_times, t_times = [], []
    with torch.no_grad():
        for _ in range(args.repeat):  # interleaved so machine noise hits both alike
            g_times.append(_median_ms(lambda: sess.run(x), 1))
            t_times.append(_median_ms(lambda: model(xt), 1))
    g_ms, t_ms = float(np.median(g_times)), float(np.median(t_times))
    print(f"      graphc x86:     {g_ms:8.3f} ms")
    print(f"      PyTorch eager:  {t_ms:8.3f} ms")
    print(f"      graphc / PyTorch eager = {g_ms / t_ms:.2f}x ({'faster' if g_ms < t_ms else 'slower'})")
    ok = diff <= 1e-4 * max(1.0, float(np.max(np.abs(ref))))
    print("OK" if ok else "MISMATCH: graphc output differs from PyTorch")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
