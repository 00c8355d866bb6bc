"""The x86 register-blocked rules on awkward shapes: row counts and column counts that are
not multiples of the register tile or panel, batch 1, tiny sizes. Every case is compiled
at opt_level 2 (weights packed at compile time), checked against the numpy interpreter,
and must have taken the blocked rule (not the generic fallback)."""
from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc import ops
from graphc.codegen.tiles import conv_columns, max_rows, pick_panel, pick_rows
from graphc.ir import GraphBuilder, TensorType
from graphc.tensor import Tensor

RNG = np.random.default_rng(0)


def _rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _compile_and_check(g, inputs, x86, rtol=1e-4, atol=1e-4):
    cm = graphc.compile(g, x86, log=lambda *a: None)
    got = cm.session().run(*inputs)
    for a, b in zip(got, graphc.run_graph(g, *inputs)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    return [n for k in cm.build.kernels for n in k.notes]


@pytest.mark.parametrize(
    "lead,k,n",
    [((1,), 33, 19), ((7,), 5, 70), ((13,), 64, 48), ((2, 9), 17, 3), ((1,), 1, 1), ((25,), 40, 130)],
    ids=["batch1", "tiny-k", "exact-panel", "3d-input", "scalar", "row-tail"],
)
def test_linear_packed_awkward_shapes(lead, k, n, x86):
    b = GraphBuilder("lin")
    x = Tensor(b.input("x", TensorType("f32", (*lead, k))))
    with b:
        y = ops.gelu(ops.linear(x, graphc.param("w", _rand(n, k))) + graphc.param("b", _rand(n)))
    g = b.build([y.value])
    notes = _compile_and_check(g, [_rand(*lead, k)], x86)
    if n > 1:
        assert "linear_packed: blocked" in notes, notes


@pytest.mark.parametrize(
    "a,bshape,note",
    [
        ((3, 7, 36), (3, 36, 20), "matmul: blocked"),
        ((1, 12, 5, 64), (1, 12, 64, 5), "matmul: blocked"),
        ((9, 16), (16, 80), "matmul: blocked"),
        ((2, 1, 6, 8), (4, 8, 40), "matmul: blocked"),
        # a prime column count read from an unpacked operand: no vector width divides it, the
        # generic schedule takes over and says why
        ((3, 7, 33), (3, 33, 19), "matmul: generic (Decline: 19 output columns split into no vector width)"),
    ],
    ids=["batched-odd", "attention-scores", "2d", "broadcast-batch", "prime-columns"],
)
def test_matmul_awkward_shapes(a, bshape, note, x86):
    b = GraphBuilder("mm")
    x = Tensor(b.input("a", TensorType("f32", a)))
    y = Tensor(b.input("b", TensorType("f32", bshape)))
    with b:
        z = ops.matmul(x, y) * np.float32(0.5)
    g = b.build([z.value])
    notes = _compile_and_check(g, [_rand(*a), _rand(*bshape)], x86)
    assert note in notes, notes


@pytest.mark.parametrize(
    "n,c,h,w,o,kk,stride,pad",
    [
        (1, 3, 9, 11, 5, 3, 1, 1),  # few channels, odd sizes, one padded panel
        (2, 8, 13, 13, 40, 3, 2, 1),  # stride 2, batch 2, last panel padded
        (1, 16, 7, 7, 32, 1, 1, 0),  # 1x1 on a 7x7 map
        (1, 1, 5, 6, 16, 3, 1, 0),  # one input channel, no padding
        (1, 4, 12, 12, 8, 7, 2, 3),  # a stem-like 7x7 stride 2
    ],
    ids=["odd", "stride2", "1x1", "one-channel", "7x7s2"],
)
def test_conv2d_packed_awkward_shapes(n, c, h, w, o, kk, stride, pad, x86):
    b = GraphBuilder("conv")
    x = Tensor(b.input("x", TensorType("f32", (n, c, h, w))))
    with b:
        y = ops.relu(ops.conv2d(x, graphc.param("w", _rand(o, c, kk, kk)), stride=(stride, stride), pad=(pad,) * 4))
    g = b.build([y.value])
    notes = _compile_and_check(g, [_rand(n, c, h, w)], x86)
    assert "conv2d_packed: blocked" in notes, notes


def test_conv_relu_pool_group_with_packed_weight(x86):
    b = GraphBuilder("cbrp")
    x = Tensor(b.input("x", TensorType("f32", (2, 3, 10, 10))))
    with b:
        y = ops.conv2d(x, graphc.param("w", _rand(20, 3, 3, 3)), pad=(1, 1, 1, 1)) + graphc.param("b", _rand(1, 20, 1, 1))
        z = ops.max_pool2d(ops.relu(y), kernel=(2, 2), stride=(2, 2))
    g = b.build([z.value])
    notes = _compile_and_check(g, [_rand(2, 3, 10, 10)], x86)
    assert "conv2d_packed: blocked" in notes, notes


def _vectorized_extents(cm) -> set[int]:
    """Extents of the vectorized loops in a compiled model's kernels (read from their TVMScript)."""
    import re

    import tvm

    found: set[int] = set()
    for _, f in cm.build.mod.functions.items():
        if isinstance(f, tvm.tirx.PrimFunc):
            found.update(int(e) for e in re.findall(r"T\.vectorized\((\d+)\)", f.script()))
    return found


@pytest.mark.parametrize("n,c,hw,o", [(1, 2, 13, 16), (2, 3, 9, 20)], ids=["odd", "row-11"])
def test_conv_pool_pads_whole_rows_as_one_vector(n, c, hw, o, x86):
    """The padded input row (hw + 2 floats, not a multiple of 16) is one vector per row, and the
    fused conv-bias-relu-pool still matches the numpy reference and PyTorch."""
    import torch

    x, w, bias = _rand(n, c, hw, hw), _rand(o, c, 3, 3), _rand(o)
    b = GraphBuilder("cbrp_rows")
    xv = Tensor(b.input("x", TensorType("f32", x.shape)))
    with b:
        y = ops.conv2d(xv, graphc.param("w", w), pad=(1, 1, 1, 1)) + graphc.param("b", bias.reshape(1, o, 1, 1))
        z = ops.max_pool2d(ops.relu(y), kernel=(2, 2), stride=(2, 2))
    g = b.build([z.value])
    cm = graphc.compile(g, x86, log=lambda *a: None)
    got = cm.session().run(x)[0]
    np.testing.assert_allclose(got, graphc.run_graph(g, x)[0], rtol=1e-4, atol=1e-4)
    want = torch.max_pool2d(torch.relu(torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(bias), padding=1)), 2)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)
    assert "conv2d_packed: blocked" in [nt for k in cm.build.kernels for nt in k.notes]
    assert hw + 2 in _vectorized_extents(cm)


def _conv_pool_graph(x, w, bias, pool: int, index: bool = False):
    b = GraphBuilder("cbrp_pixels")
    xv = Tensor(b.input("x", TensorType("f32", x.shape)))
    with b:
        y = ops.relu(ops.conv2d(xv, graphc.param("w", w), pad=(1, 1, 1, 1)) + graphc.param("b", bias.reshape(1, -1, 1, 1)))
        if index:
            z = ops.max_pool2d_with_index(y, kernel=(pool, pool), stride=(pool, pool))
        else:
            z = ops.max_pool2d(y, kernel=(pool, pool), stride=(pool, pool))
    return b.build([t.value for t in (z if isinstance(z, tuple) else (z,))])


def _pixel_kernel_script(cm) -> str:
    import tvm

    scripts = [f.script() for _, f in cm.build.mod.functions.items() if isinstance(f, tvm.tirx.PrimFunc)]
    return next(s for s in scripts if "pool" in s)


def _takes_pixel_path(cm, pool: int, conv_w: int) -> bool:
    """The conv's register tile is [.., rows, pool phase, pooled column]: pixels are the lanes."""
    return f", {pool}, {conv_w // pool}), scope=\"local\")" in _pixel_kernel_script(cm)


# (n, c, h, w, o, pool): the seed CNN's conv1; 3 channels (27 reduction steps); 20 output
# channels (a 5-channel tile); a 3x3 pool; pooled rows of 32 (two 16-lane vectors) and of 9 (7 lost)
PIXEL_CASES = [(3, 1, 28, 28, 32, 2), (2, 3, 16, 16, 20, 2), (1, 1, 33, 27, 8, 3), (1, 1, 6, 64, 8, 2), (2, 2, 18, 18, 12, 2)]


@pytest.mark.parametrize("n,c,h,w,o,pool", PIXEL_CASES, ids=["seed-conv1", "c3-o20", "pool3", "wide", "pooled-9"])
def test_few_channel_conv_pool_vectorizes_pixels(n, c, h, w, o, pool, x86):
    """A conv with a short reduction (C x 3 x 3 <= 32) under a non-overlapping pool: pixels are
    the vector lanes (the conv columns split by pool phase, the padded input deinterleaved to
    match), each pooled row stored as contiguous vectors. Checked against numpy and PyTorch."""
    import torch

    from graphc.codegen.schedule.cpu_base import CpuParams
    from graphc.codegen.schedule.cpu_conv import _pixel_lanes

    x, wt, bias = _rand(n, c, h, w), _rand(o, c, 3, 3), _rand(o)
    g = _conv_pool_graph(x, wt, bias, pool)
    cm = graphc.compile(g, x86, log=lambda *a: None)
    got = cm.session().run(x)[0]
    np.testing.assert_allclose(got, graphc.run_graph(g, x)[0], rtol=1e-4, atol=1e-4)
    want = torch.max_pool2d(torch.relu(torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(wt), torch.from_numpy(bias), padding=1)), pool)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)
    assert "conv2d_packed: blocked" in [nt for k in cm.build.kernels for nt in k.notes]
    lanes = _pixel_lanes(w // pool, CpuParams(x86.vector_bits, 2))
    script = _pixel_kernel_script(cm)
    if lanes is None:  # pooled rows no vector width fits (e.g. 9 pixels, 8 lanes on AVX2): channel panels
        assert f", {pool}, {-(-w // pool)}" not in script
        return
    assert lanes in _vectorized_extents(cm)
    assert _takes_pixel_path(cm, pool, w)
    # the padded input [n, c, h + 2, w + 2] stored as [n, c, h + 2, pool, (w + 2) / pool] when that divides
    if (w + 2) % pool == 0:
        assert f"({n}, {c}, {h + 2}, {pool}, {(w + 2) // pool})" in script


# (n, c, h, w, o, epilogue): the seed CNN's conv1 unpooled; 3 channels with bias + ReLU (stored
# through the crop); an odd row count (tiles of one row); 12-pixel rows
UNPOOLED_CASES = [(2, 1, 28, 28, 32, False), (2, 3, 16, 24, 20, True), (1, 2, 9, 20, 8, True)]


@pytest.mark.parametrize("n,c,h,w,o,epilogue", UNPOOLED_CASES, ids=["seed-conv1", "c3-bias-relu", "odd-rows"])
def test_few_channel_conv_vectorizes_pixels(n, c, h, w, o, epilogue, x86):
    """Unpooled, the same rule tiles a few channels x 2 rows x one vector of output pixels and
    stores whole pixel vectors (NCHW) instead of transposing channel vectors lane by lane."""
    import torch

    from graphc.codegen.schedule.cpu_base import CpuParams
    from graphc.codegen.schedule.cpu_conv import _pixel_lanes

    x, wt, bias = _rand(n, c, h, w), _rand(o, c, 3, 3), _rand(o)
    b = GraphBuilder("conv_pixels")
    xv = Tensor(b.input("x", TensorType("f32", x.shape)))
    with b:
        y = ops.conv2d(xv, graphc.param("w", wt), pad=(1, 1, 1, 1))
        if epilogue:
            y = ops.relu(y + graphc.param("b", bias.reshape(1, -1, 1, 1)))
    g = b.build([y.value])
    cm = graphc.compile(g, x86, log=lambda *a: None)
    got = cm.session().run(x)[0]
    np.testing.assert_allclose(got, graphc.run_graph(g, x)[0], rtol=1e-4, atol=1e-4)
    want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(wt), torch.from_numpy(bias) if epilogue else None, padding=1)
    np.testing.assert_allclose(got, (torch.relu(want) if epilogue else want).numpy(), rtol=1e-4, atol=1e-4)
    assert "conv2d_packed: blocked" in [nt for k in cm.build.kernels for nt in k.notes]
    lanes = _pixel_lanes(w, CpuParams(x86.vector_bits, 2))
    if lanes is not None:
        assert lanes in _vectorized_extents(cm)


def test_few_channel_conv_pool_with_index_for_training(x86):
    """max_pool2d_with_index (training's pool: value and tap) shares the pixel-vector loop nest."""
    x, wt, bias = _rand(2, 1, 28, 28), _rand(16, 1, 3, 3), _rand(16)
    g = _conv_pool_graph(x, wt, bias, 2, index=True)
    cm = graphc.compile(g, x86, log=lambda *a: None)
    got = cm.session().run(x)
    for a, b in zip(got, graphc.run_graph(g, x)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert "conv2d_packed: blocked" in [nt for k in cm.build.kernels for nt in k.notes]


@pytest.mark.parametrize("pool,size", [(2, 28), (3, 27)])
def test_few_channel_conv_pool_with_a_runtime_weight(pool, size, x86):
    """The weight as an input (training): packed per call by its own stage, which the pixel rule
    must leave alone (its last axis, the 3 taps, also divides by a 3x3 pool's phase count)."""
    x, wt, bias = _rand(2, 1, size, size), _rand(8, 1, 3, 3), _rand(8)
    b = GraphBuilder("cbrp_runtime_w")
    xv = Tensor(b.input("x", TensorType("f32", x.shape)))
    wv = Tensor(b.input("w", TensorType("f32", wt.shape)))
    with b:
        y = ops.relu(ops.conv2d(xv, wv, pad=(1, 1, 1, 1)) + graphc.param("b", bias.reshape(1, -1, 1, 1)))
        z = ops.max_pool2d(y, kernel=(pool, pool), stride=(pool, pool))
    g = b.build([z.value])
    cm = graphc.compile(g, x86, log=lambda *a: None)
    np.testing.assert_allclose(cm.session().run(x, wt)[0], graphc.run_graph(g, x, wt)[0], rtol=1e-4, atol=1e-4)
    assert "conv2d: blocked" in [nt for k in cm.build.kernels for nt in k.notes]
    if x86.vector_bits == 512:
        assert _takes_pixel_path(cm, pool, size)


def test_conv2d_with_a_runtime_weight_packs_per_call(x86):
    b = GraphBuilder("convw")
    x = Tensor(b.input("x", TensorType("f32", (1, 6, 9, 9))))
    w = Tensor(b.input("w", TensorType("f32", (24, 6, 3, 3))))
    with b:
        y = ops.conv2d(x, w, pad=(1, 1, 1, 1))
    g = b.build([y.value])
    notes = _compile_and_check(g, [_rand(1, 6, 9, 9), _rand(24, 6, 3, 3)], x86)
    assert "conv2d: blocked" in notes, notes


@pytest.mark.parametrize("bits", [512, 256, 128])
def test_register_tiles_fit_the_register_file(bits):
    regs = 16 if bits == 256 else 32
    for nv in (1, 2, 3, 4):
        mr = max_rows(nv, bits)
        assert mr * nv + nv + 1 <= regs  # accumulators + weight vectors + one broadcast
        for m in (1, 5, 7, 64, 97, 128, 512):
            rows = pick_rows(m, nv, bits)
            assert 1 <= rows <= max(mr, 1) and (rows == m or rows <= mr)
    for ow in (7, 14, 28, 56, 112, 5, 9):
        cols = conv_columns(ow, 2, bits)
        assert cols <= ow and cols * 2 + 3 <= regs


def test_panel_choice_prefers_less_padding_on_narrow_outputs():
    assert pick_panel(64, 10, 16, 512) == 16  # 10 classes: one vector, not 48 columns of padding
    assert pick_panel(128, 768, 16, 512) % 16 == 0
    assert 768 % pick_panel(128, 768, 16, 512) == 0  # BERT's width: exact panels
    assert pick_panel(128, 768, 16, 512) == 48  # 8x3 vectors: the full register tile where it pads nothing
    assert 128 % pick_panel(64, 128, 16, 512) == 0  # the seed MLP's fc1: not 8x3 tiles padding 128 columns to 144


@pytest.mark.parametrize(
    "n,c,hw,o",
    [(1, 64, 8, 20), (2, 24, 4, 40), (1, 3, 8, 5)],
    ids=["6-row-panels-padded", "batch2-16-pixels", "few-channels"],
)
def test_1x1_conv_as_gemm_over_pixels_with_residual_epilogue(n, c, hw, o, x86):
    """1x1 stride-1 convs over whole vectors of pixels run as a GEMM (rows: channels, columns:
    pixels); the output stage walks the flattened pixels and applies bias, relu and the residual."""
    b = GraphBuilder("c1x1")
    x = Tensor(b.input("x", TensorType("f32", (n, c, hw, hw))))
    r = Tensor(b.input("r", TensorType("f32", (n, o, hw, hw))))
    with b:
        y = ops.conv2d(x, graphc.param("w", _rand(o, c, 1, 1))) + graphc.param("b", _rand(1, o, 1, 1))
        z = ops.relu(y) + r
    g = b.build([z.value])
    notes = _compile_and_check(g, [_rand(n, c, hw, hw), _rand(n, o, hw, hw)], x86)
    assert "conv2d_packed: blocked" in notes, notes


@pytest.mark.parametrize(
    "c,hw,o,group",
    [(16, 28, 20, 7), (8, 12, 13, 3), (24, 20, 6, 5), (24, 4, 6, 1)],
    ids=["49-blocks-in-7s", "3-wide-blocks", "25-blocks-in-5s", "one-block"],
)
def test_1x1_conv_gemm_walks_groups_of_pixel_blocks(c, hw, o, group, x86):
    """Each channel tile of a 1x1 GEMM-form conv walks `group` pixel blocks (the largest divisor
    of the block count up to 8): numerics unchanged, padded last panel included."""
    from graphc.codegen.schedule.cpu_conv import _pixel_group
    from graphc.codegen.tiles import column_vectors

    vl, nv = column_vectors(hw * hw, 16)
    assert _pixel_group(hw * hw // (vl * nv), c * vl * nv * 4) == group
    b = GraphBuilder("c1x1g")
    x = Tensor(b.input("x", TensorType("f32", (1, c, hw, hw))))
    with b:
        y = ops.relu(ops.conv2d(x, graphc.param("w", _rand(o, c, 1, 1))))
    notes = _compile_and_check(b.build([y.value]), [_rand(1, c, hw, hw)], x86)
    assert "conv2d_packed: blocked" in notes, notes


def test_pixel_group_keeps_the_group_input_within_l2_budget():
    from graphc.codegen.schedule.cpu_conv import PIXEL_GROUP_BYTES, _pixel_group

    assert _pixel_group(49, 64 * 64 * 4) == 7  # ResNet 64-channel 1x1 @56: 49 blocks of 64 pixels
    assert _pixel_group(49, PIXEL_GROUP_BYTES // 2) == 1  # 7 blocks would not fit
    assert _pixel_group(13, 1024) == 1  # a prime count: no partial groups


@pytest.mark.parametrize(
    "op,shape,partials",
    [
        ("layer_norm", (3, 128), True),  # 8 vectors per row: vector partial sums
        ("layer_norm", (4, 33), False),  # not a multiple of the lanes: serial
        ("softmax", (2, 5, 64), True),
        ("softmax", (6, 16), False),  # one vector per row: nothing to split
    ],
)
def test_row_reductions_accumulate_vector_partials(op, shape, partials, x86):
    """Reductions along a contiguous last axis keep one vector of partial results per row
    (rfactor), numerically checked against the interpreter, NaN and infinities included."""
    from graphc.codegen.module import build_relax_module
    from graphc.passes.pipeline import optimize

    b = GraphBuilder("red")
    x = Tensor(b.input("x", TensorType("f32", shape)))
    with b:
        if op == "layer_norm":
            y = ops.layer_norm(x, graphc.param("g", _rand(shape[-1])), graphc.param("b", _rand(shape[-1])))
        else:
            y = ops.softmax(x, axis=-1)
    g = b.build([y.value])
    xv = _rand(*shape) * 4
    if op == "softmax":  # a row with -inf, a row with +inf, a row with NaN: exact semantics survive the split
        xv.reshape(-1, shape[-1])[0, 3] = -np.inf
        xv.reshape(-1, shape[-1])[1, 0] = np.inf
        xv.reshape(-1, shape[-1])[2, 7] = np.nan
    got = graphc.compile(g, x86, log=lambda *a: None).session().run(xv)[0]
    np.testing.assert_allclose(got, graphc.run_graph(g, xv)[0], rtol=1e-5, atol=1e-6)
    opt, _ = optimize(g, 2)
    script = "\n".join(f.script() for f in build_relax_module(opt, x86).mod.functions.values() if hasattr(f, "script"))
    assert ("_rf_update" in script) == partials
