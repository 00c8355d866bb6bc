"""The CPU flash-attention template (graphc/codegen/kernels/attention_cpu.py), built on its own.

Numerics against the op's numpy reference (and PyTorch for the benchmark shapes) over the op's
samples and cases that hit every edge of the micro-kernel: ragged query / key tiles, key blocks
that do not tile the keys, causal over several blocks, boolean / float / broadcast masks, rows
with every key masked, broadcast batches, value widths split into chunks. lanes=4 is the ARM
(NEON) shape of the same template, run here on x86. The assembly check pins what makes it fast.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import tvm
from tvm import tirx

from graphc.codegen.kernels.attention_cpu import AttentionShapes, flash_attention_cpu
from graphc.ops.registry import REGISTRY
from graphc.targets import resolve
from tests.codegen.attention_cases import flash_attention_cases


def _build(q, k, v, mask, scale, causal, lanes=16):
    kt = np.ascontiguousarray(np.swapaxes(k, -1, -2))
    out_shape = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2]) + (q.shape[-2], v.shape[-1])
    sh = AttentionShapes(q.shape, kt.shape, v.shape, mask[0].shape if mask else None,
                         ("bool" if mask[0].dtype == bool else "f32") if mask else None, out_shape)
    func = flash_attention_cpu(sh, scale if scale is not None else 1 / math.sqrt(q.shape[-1]), causal, lanes=lanes)
    lib = tirx.build(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}), resolve("x86").tvm_target())
    return lib, (q, kt, v, *mask), out_shape


def _run(q, k, v, mask, scale, causal, lanes=16):
    lib, args, out_shape = _build(q, k, v, mask, scale, causal, lanes)
    dev = tvm.cpu()
    out = tvm.runtime.tensor(np.zeros(out_shape, np.float32), dev)
    lib["main"](*[tvm.runtime.tensor(a, dev) for a in args], out)
    return out.numpy()


def _reference(q, k, v, mask, scale, causal):
    return REGISTRY["scaled_dot_product_attention"].ref(q, k, v, *mask, scale=scale, causal=causal, softcap=0.0)


def _cases():
    yield from flash_attention_cases()
    rng = np.random.default_rng(1)

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    yield pytest.param([r(1, 2, 130, 64), r(1, 2, 200, 64), r(1, 2, 200, 64)], None, True, id="causal-sq-lt-sk")
    keep = rng.random((1, 1, 37, 150)) > 0.3
    keep[..., 5, :] = False  # a row with every key masked: zeros, not NaN
    yield pytest.param([r(2, 3, 37, 20), r(2, 3, 150, 20), r(2, 3, 150, 33), keep], None, False, id="bool-mask-empty-row")
    yield pytest.param([r(2, 1, 67, 64), r(1, 4, 96, 64), r(2, 4, 96, 80), r(67, 96) * 3], 0.1, False,
                       id="broadcast-batches-float-mask-dv80")
    yield pytest.param([r(1, 1, 9, 200), r(1, 1, 11, 200), r(1, 1, 11, 160)], None, False, id="wide-heads")
    big = r(1, 2, 64, 16) * 30  # scores far from 0: the exp2 range and the running-max rescaling
    yield pytest.param([big, r(1, 2, 128, 16) * 30, r(1, 2, 128, 16)], None, False, id="large-scores")


@pytest.mark.parametrize("lanes", [16, 4], ids=["avx512", "neon-shape"])
@pytest.mark.parametrize("inputs,scale,causal", list(_cases()))
def test_flash_attention_cpu_matches_reference(inputs, scale, causal, lanes):
    q, k, v, *mask = inputs
    expected = _reference(q, k, v, mask, scale, causal)
    # fp32 rounding of a score of size |s| moves its probability by ~|s| * eps relatively (large-scores case)
    top = np.abs(np.matmul(q, np.swapaxes(k, -1, -2))).max() * (scale if scale is not None else 1 / math.sqrt(q.shape[-1]))
    rtol = max(2e-5, 8 * float(np.finfo(np.float32).eps) * top)
    np.testing.assert_allclose(_run(q, k, v, mask, scale, causal, lanes), expected, rtol=rtol, atol=2e-6)


@pytest.mark.parametrize("seq,causal", [(128, False), (512, False), (128, True)])
def test_flash_attention_cpu_matches_torch_at_benchmark_shapes(seq, causal):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seq)
    q, k, v = [rng.standard_normal((1, 12, seq, 64)).astype(np.float32) for _ in range(3)]
    expected = torch.nn.functional.scaled_dot_product_attention(*map(torch.from_numpy, (q, k, v)), is_causal=causal).numpy()
    np.testing.assert_allclose(_run(q, k, v, [], None, causal), expected, rtol=1e-5, atol=2e-6)


def test_nan_inputs_propagate():
    rng = np.random.default_rng(1)
    q, k, v = [rng.standard_normal((1, 1, 8, 16)).astype(np.float32) for _ in range(3)]
    q[0, 0, 3, 2] = np.nan
    out = _run(q, k, v, [], None, False)
    assert np.isnan(out[0, 0, 3]).all()
    np.testing.assert_allclose(np.delete(out[0, 0], 3, axis=0), np.delete(_reference(q, k, v, [], None, False)[0, 0], 3, axis=0),
                               rtol=1e-5, atol=2e-6)


def test_micro_kernel_assembly():
    """Score and P@V tiles are zmm FMAs with broadcast operands, and exp2 is vector code (TVM leaves a
    loop with `isnan` unvectorized, which LLVM then re-vectorizes at 8 lanes or not at all)."""
    rng = np.random.default_rng(0)
    q, k, v = [rng.standard_normal((1, 12, 512, 64)).astype(np.float32) for _ in range(3)]
    lib, _, _ = _build(q, k, v, [], None, False)
    asm = lib.inspect_source("asm")
    fma = re.findall(r"vfmadd231ps\s+%zmm\d+, %zmm\d+, %zmm\d+", asm)
    assert len(fma) >= 32, "score / P@V tiles should be zmm FMAs on register accumulators"
    assert re.search(r"vrndscaleps\s+\$9, %zmm", asm), "exp2's rounding should be a 16-lane vector instruction"
    assert not re.search(r"vroundps\s+\$9, %ymm", asm), "exp2 split into 8-lane pieces: the exp loop was not vectorized by TVM"
