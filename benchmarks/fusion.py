"""What each fusion buys: fused vs unfused kernels on the seed CNN layers and on attention.

    python -m benchmarks.fusion [--rounds 30]

For each case the same graph is compiled with the full -O2 pipeline and with the
fusion pass of interest removed; we report latency (median of interleaved rounds),
the fused/unfused ratio, the number of kernels and the bytes the kernels move.
Writes benchmarks/results/fusion.json.
"""
from __future__ import annotations

import argparse
import math

import numpy as np

import graphc
from benchmarks.harness import interleaved, kernel_bytes, write_json
from graphc import nn as gnn
from graphc.examples import seeds
from graphc.passes import pipeline


def _compile(graph, drop: tuple[str, ...]):
    passes = [p for p in pipeline.LEVELS[2] if p not in drop]
    optimized, _ = pipeline.run_pipeline(graph, passes, log=lambda s: None)
    return graphc.compile(optimized, opt_level=0)


def cnn_layer(index: int):
    weights = seeds.state_dict_numpy(seeds.torch_cnn(0))
    p = {k: graphc.param(k, v) for k, v in weights.items()}
    shape = (64, 1, 28, 28) if index == 1 else (64, 32, 14, 14)

    def layer(x):
        return gnn.max_pool2d(gnn.relu(gnn.conv2d(x, p[f"conv{index}.weight"], p[f"conv{index}.bias"], padding=1)), 2)

    x = seeds.random_input(shape)
    return graphc.trace(layer, x), [x]


def attention(seq: int, heads: int = 12, head_dim: int = 64):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, heads, seq, head_dim)).astype(np.float32) for _ in range(3))
    mask = np.zeros((1, 1, 1, seq), np.float32)
    mask[..., seq - seq // 8 :] = -1e9

    def block(q, k, v, mask):  # BERT's eager attention, spelled out
        s = (q @ k.transpose(-1, -2)) / math.sqrt(head_dim) + mask
        return gnn.softmax(s, dim=-1) @ v

    return graphc.trace(block, q, k, v, mask), [q, k, v, mask]


CASES = {
    "seed_cnn_layer1 (conv-bias-relu-pool)": (lambda: cnn_layer(1), ("fuse_conv_pool", "fuse_groups")),
    "seed_cnn_layer2 (conv-bias-relu-pool)": (lambda: cnn_layer(2), ("fuse_conv_pool", "fuse_groups")),
    "attention b1 h12 s128 d64": (lambda: attention(128), ("fuse_attention", "fuse_groups")),
    "attention b1 h12 s512 d64": (lambda: attention(512), ("fuse_attention", "fuse_groups")),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args(argv)
    results = {}
    for name, (build, dropped) in CASES.items():
        graph, inputs = build()
        fused, unfused = _compile(graph, ()), _compile(graph, dropped)
        sf, su = fused.session(), unfused.session()
        ref = graphc.run_graph(graph, *inputs)[0]
        for s in (sf, su):
            np.testing.assert_allclose(s.run(*inputs)[0], ref, rtol=1e-4, atol=1e-4)
        times = interleaved({"fused": lambda: sf.run(*inputs), "unfused": lambda: su.run(*inputs)}, rounds=args.rounds)
        row = {
            "fused_ms": times["fused"]["median_ms"],
            "unfused_ms": times["unfused"]["median_ms"],
            "fused_over_unfused": times["fused"]["median_ms"] / times["unfused"]["median_ms"],
            "fused_kernels": sum(k.uses for k in fused.build.kernels),
            "unfused_kernels": sum(k.uses for k in unfused.build.kernels),
            "fused_bytes": kernel_bytes(fused.graph),
            "unfused_bytes": kernel_bytes(unfused.graph),
            "disabled_passes": list(dropped),
        }
        results[name] = row
        print(
            f"{name:40} fused {row['fused_ms']:8.3f} ms ({row['fused_kernels']} kernels, {row['fused_bytes'] / 1e6:7.2f} MB)"
            f"  unfused {row['unfused_ms']:8.3f} ms ({row['unfused_kernels']} kernels, {row['unfused_bytes'] / 1e6:7.2f} MB)"
            f"  ratio {row['fused_over_unfused']:.2f}"
        )
    print("wrote", write_json("fusion", {"cases": results, "rounds": args.rounds}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
