"""Runtime under load: RSS stays flat over many runs, compiling and loading many artifacts
does not leak, and compiling BERT-base stays under 6 GB peak RSS."""
from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphc
from graphc import ops
from graphc.examples import seeds
from graphc.ir import GraphBuilder, TensorType
from graphc.tensor import Tensor


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_ten_thousand_runs_keep_rss_flat(tmp_path):
    model = seeds.torch_mlp(0)
    x = seeds.random_input(seeds.MLP_INPUT)
    g = graphc.trace(seeds.graphc_mlp(seeds.state_dict_numpy(model)), x)
    sess = graphc.runtime.load(graphc.compile(g).save(str(tmp_path / "mlp.gca")))
    for _ in range(500):  # warm up: allocator pools, caches
        sess.run(x)
    gc.collect()
    before = rss_mb()
    for _ in range(10_000):
        sess.run(x)
    gc.collect()
    growth = rss_mb() - before
    assert growth < 4.0, f"RSS grew {growth:.1f} MB over 10,000 runs"


def _tiny_graph(i: int):
    b = GraphBuilder(f"tiny{i}")
    x = Tensor(b.input("x", TensorType("f32", (4, 8))))
    with b:
        y = ops.tanh(x * np.float32(1.0 + i / 100.0)) + np.float32(i)
    return b.build([y.value])


@pytest.mark.slow
def test_compiling_and_loading_a_hundred_artifacts_does_not_leak(tmp_path):
    x = np.ones((4, 8), np.float32)

    def cycle(i):
        path = graphc.compile(_tiny_graph(i)).save(str(tmp_path / f"m{i}.gca"))
        out = graphc.runtime.load(path).run(x)[0]
        np.testing.assert_allclose(out, np.tanh(x * (1.0 + i / 100.0)) + i, rtol=1e-6, atol=1e-6)

    for i in range(20):  # warm up LLVM, TVM's registries and the allocator
        cycle(i)
    gc.collect()
    before = rss_mb()
    for i in range(20, 120):
        cycle(i)
    gc.collect()
    growth = rss_mb() - before
    # each compile leaves a few kB of TVM/LLVM interning behind; a leaked module would be MBs
    assert growth < 40.0, f"RSS grew {growth:.1f} MB over 100 compile+load cycles"


@pytest.mark.slow
def test_compiling_bert_base_stays_under_6_gb(tmp_path):
    """Peak RSS of a fresh process that imports and compiles BERT-base (torch path)."""
    script = textwrap.dedent(
        """
        import json, resource
        import graphc
        from graphc.examples import hf_models
        module, inputs = hf_models.build("bert")
        graph = graphc.from_torch(module, tuple(inputs.values()))
        del module
        graphc.compile(graph, target="x86")
        print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        """
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    peak = json.loads(res.stdout.strip().splitlines()[-1])["peak_rss_mb"]
    print(f"BERT-base compile peak RSS: {peak:.0f} MB")
    assert peak < 6 * 1024, f"compiling BERT-base peaked at {peak:.0f} MB"
