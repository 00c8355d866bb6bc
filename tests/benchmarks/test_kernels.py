"""The per-kernel microbenchmark on its smallest kernels: it runs, every kernel's output matches
the interpreter, and the JSON has what the "% of sgemm peak" target is read from. GFLOP/s are
reported, never asserted."""
from __future__ import annotations

import json

from benchmarks import kernels


def test_kernel_benchmark_writes_checked_results(tmp_path):
    kernels.main(["--only", "mlp", "--rounds", "2", "--out", str(tmp_path)])
    with open(tmp_path / "kernels.json") as f:
        res = json.load(f)
    assert res["sgemm_peak_gflops"] > 0 and res["threads"] >= 1
    names = [r["kernel"] for r in res["kernels"]]
    assert names == ["mlp fc1", "mlp fc1+relu+fc2+softmax"]
    fc1, chain = res["kernels"]
    for row in res["kernels"]:
        assert row["max_rel_err"] < 1e-4, row  # graphc's kernel computed the op
        assert row["graphc_best_gflops"] > 0 and row["pct_of_peak"] > 0
    assert fc1["notes"] == ["linear_packed: blocked"], fc1
    assert fc1["gflop"] == 2 * 64 * 784 * 128 / 1e9
    assert chain["notes"] == ["gemm chain: 2 GEMMs per row tile"], chain  # one kernel: both GEMMs and the softmax
    assert chain["gflop"] == 2 * 64 * 128 * (784 + 10) / 1e9


def test_flop_counts_of_each_kernel_kind():
    conv = kernels.Kernel("c", "m", "conv2d", (2, 3, 9, 9, 4, 3, 2, 1))  # 5x5 output
    assert conv.flops == 2 * 2 * 4 * 5 * 5 * 3 * 3 * 3
    pooled = kernels.Kernel("p", "m", "conv_pool", (2, 3, 8, 8, 4, 3, 1, 1, 2))  # the conv's 8x8 output, pooled
    assert pooled.flops == 2 * 2 * 4 * 8 * 8 * 3 * 3 * 3  # the pool's maxes are not counted
    assert kernels.Kernel("a", "m", "attention", (1, 2, 8, 4)).flops == 4 * 2 * 8 * 8 * 4
    assert len({k.name for k in kernels.KERNELS}) == len(kernels.KERNELS)
