"""The compile-time weight layout pass: constant linear / matmul / conv2d weights become
panel-packed constants read by linear_packed / conv2d_packed (BEFORE/EXPECTED, numerics
on the interpreter, round trip), and everything else is left alone."""
from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc.codegen.tiles import conv_gemm_panel, conv_panel, pick_panel
from graphc.ir import const_hash
from graphc.ops.packed import pack_ref
from graphc.passes.layout import layout_for_target, pack_weights
from graphc.passes.pipeline import random_inputs
from graphc.printer import parse_graph
from graphc.targets import resolve
from tests.conftest import assert_roundtrip

LANES, BITS = 16, 512  # AVX-512 f32
RNG = np.random.default_rng(0)
W = RNG.standard_normal((20, 8)).astype(np.float32)  # linear weight [N, K]: 20 columns, not a panel multiple
B = RNG.standard_normal((8, 20)).astype(np.float32)  # matmul's right operand [K, N]
C = RNG.standard_normal((5, 3, 3, 3)).astype(np.float32)  # conv weight [O, C, KH, KW]
BIAS = RNG.standard_normal(20).astype(np.float32)


def _pool(*arrays) -> dict[str, np.ndarray]:
    return {const_hash(a): a for a in arrays}


def _h(a: np.ndarray) -> str:
    return "#" + const_hash(a)


def _check(before: str, expected: str | None, arrays, lanes=LANES, bits=BITS):
    """pack_weights(BEFORE) equals EXPECTED (None: unchanged), computes the same on random inputs, round-trips."""
    g = parse_graph(before, _pool(*arrays))
    out = pack_weights(g, lanes, bits)
    exp = g if expected is None else parse_graph(expected, _pool(*arrays))
    assert out.structurally_equal(exp), f"got:\n{out}\nexpected:\n{exp}"
    ins = random_inputs(g, 0)
    for a, b in zip(graphc.run_graph(g, *ins), graphc.run_graph(out, *ins)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)
    assert_roundtrip(out)
    return out


def test_linear_weight_is_packed_into_panels_for_the_row_count():
    panel = pick_panel(4, 20, LANES, BITS)
    assert panel == 32  # 4 rows: a 2-vector tile beats 1 vector despite the padding
    wp = pack_ref(W, panel)
    _check(
        f"""graph @g(%x: f32[4,8]) {{
          %w = const f32[20,8] {_h(W)}
          %0: f32[4,20] = linear(%x, %w)
          return %0
        }}""",
        f"""graph @g(%x: f32[4,8]) {{
          %w.packed = const f32[1,8,32] {_h(wp)}
          %0: f32[4,20] = linear_packed(%x, %w.packed) {{n=20}}
          return %0
        }}""",
        [W, wp],
    )


def test_matmul_with_a_constant_right_operand_becomes_linear_packed():
    wp = pack_ref(np.ascontiguousarray(B.T), pick_panel(6, 20, LANES, BITS))
    _check(
        f"""graph @g(%x: f32[2,3,8]) {{
          %b = const f32[8,20] {_h(B)}
          %0: f32[2,3,20] = matmul(%x, %b)
          return %0
        }}""",
        f"""graph @g(%x: f32[2,3,8]) {{
          %b.packed = const f32[{wp.shape[0]},8,{wp.shape[2]}] {_h(wp)}
          %0: f32[2,3,20] = linear_packed(%x, %b.packed) {{n=20}}
          return %0
        }}""",
        [B, wp],
    )


def test_conv_weight_is_packed_and_keeps_its_window_attrs():
    cp = pack_ref(C, conv_panel(5, LANES))
    _check(
        f"""graph @g(%im: f32[1,3,6,6]) {{
          %c = const f32[5,3,3,3] {_h(C)}
          %0: f32[1,5,3,3] = conv2d(%im, %c) {{stride=[2,2], pad=[1,1,1,1]}}
          return %0
        }}""",
        f"""graph @g(%im: f32[1,3,6,6]) {{
          %c.packed = const f32[1,3,3,3,16] {_h(cp)}
          %0: f32[1,5,3,3] = conv2d_packed(%im, %c.packed) {{out_channels=5, stride=[2,2], pad=[1,1,1,1], dilation=[1,1]}}
          return %0
        }}""",
        [C, cp],
    )


@pytest.mark.parametrize(
    "size,stride,gemm", [(8, 1, True), (8, 2, False), (5, 1, False)], ids=["gemm-64-pixels", "stride2-direct", "25-pixels-direct"]
)
def test_1x1_conv_panels_follow_the_kernel_form(size, stride, gemm):
    """A 1x1 stride-1 conv over whole vectors of pixels is computed as a GEMM whose tile rows are
    output channels: its panels are the tile's row count, not a channel-vector width."""
    c1 = RNG.standard_normal((20, 3, 1, 1)).astype(np.float32)
    out = (size - 1) // stride + 1
    panel = conv_gemm_panel(out * out, LANES, BITS) if gemm else conv_panel(20, LANES)
    assert (panel == 6) == gemm  # 64 pixels: 4 vectors per tile row, 6 rows
    cp = pack_ref(c1, panel)
    _check(
        f"""graph @g(%im: f32[1,3,{size},{size}]) {{
          %c = const f32[20,3,1,1] {_h(c1)}
          %0: f32[1,20,{out},{out}] = conv2d(%im, %c) {{stride=[{stride},{stride}]}}
          return %0
        }}""",
        f"""graph @g(%im: f32[1,3,{size},{size}]) {{
          %c.packed = const f32[{cp.shape[0]},3,1,1,{panel}] {_h(cp)}
          %0: f32[1,20,{out},{out}] = conv2d_packed(%im, %c.packed) {{out_channels=20, stride=[{stride},{stride}], pad=[0,0,0,0], dilation=[1,1]}}
          return %0
        }}""",
        [c1, cp],
    )


def test_anchor_inside_a_fused_group_is_packed_and_the_unpacked_weight_leaves_the_group():
    wp = pack_ref(W, pick_panel(4, 20, LANES, BITS))
    _check(
        f"""graph @g(%x: f32[4,8]) {{
          %w = const f32[20,8] {_h(W)}
          %b = const f32[20] {_h(BIAS)}
          %0: f32[4,20] = fused[dense_epilogue](%x, %w, %b) {{
            graph @dense_epilogue(%in0: f32[4,8], %in1: f32[20,8], %in2: f32[20]) {{
              %0: f32[4,20] = linear(%in0, %in1)
              %1: f32[4,20] = add(%0, %in2)
              %2: f32[4,20] = relu(%1)
              return %2
            }}
          }}
          return %0
        }}""",
        f"""graph @g(%x: f32[4,8]) {{
          %b = const f32[20] {_h(BIAS)}
          %w.packed = const f32[1,8,32] {_h(wp)}
          %0: f32[4,20] = fused[dense_epilogue](%x, %b, %w.packed) {{
            graph @dense_epilogue(%in0: f32[4,8], %in1: f32[20], %in2: f32[1,8,32]) {{
              %0: f32[4,20] = linear_packed(%in0, %in2) {{n=20}}
              %1: f32[4,20] = add(%0, %in1)
              %2: f32[4,20] = relu(%1)
              return %2
            }}
          }}
          return %0
        }}""",
        [W, BIAS, wp],
    )


@pytest.mark.parametrize(
    "before",
    [
        # a weight known only at run time: the kernel packs it per call, the graph keeps it
        """graph @g(%x: f32[4,8], %w: f32[20,8]) {
          %0: f32[4,20] = linear(%x, %w)
          return %0
        }""",
        # a grouped convolution: no packed op for it
        """graph @g(%im: f32[1,4,6,6]) {
          %c = const f32[4,2,3,3] #CONV
          %0: f32[1,4,4,4] = conv2d(%im, %c) {groups=2}
          return %0
        }""",
        # f64: the packed kernels are f32 only
        """graph @g(%x: f64[4,8]) {
          %w = const f64[20,8] #W64
          %0: f64[4,20] = linear(%x, %w)
          return %0
        }""",
        # a batched constant right operand (3-d): not a single weight matrix
        """graph @g(%x: f32[2,4,8]) {
          %b = const f32[2,8,20] #B3
          %0: f32[2,4,20] = matmul(%x, %b)
          return %0
        }""",
    ],
    ids=["runtime-weight", "grouped-conv", "f64", "batched-matmul"],
)
def test_unpackable_weights_are_left_alone(before):
    arrays = [
        RNG.standard_normal((4, 2, 3, 3)).astype(np.float32),
        RNG.standard_normal((20, 8)),
        RNG.standard_normal((2, 8, 20)).astype(np.float32),
    ]
    for key, a in zip(("#CONV", "#W64", "#B3"), arrays):
        before = before.replace(key, _h(a))
    _check(before, None, arrays)


def test_layout_only_runs_for_cpu_targets():
    g = parse_graph(
        f"""graph @g(%x: f32[4,8]) {{
          %w = const f32[20,8] {_h(W)}
          %0: f32[4,20] = linear(%x, %w)
          return %0
        }}""",
        _pool(W),
    )
    assert layout_for_target(g, resolve("cuda")) is g
    packed = layout_for_target(g, resolve("x86"))
    assert [n.op for n in packed.nodes if n.op != "const"] == ["linear_packed"]


def test_compiled_model_reads_packed_weights_and_matches_the_interpreter(x86):
    g = parse_graph(
        f"""graph @g(%x: f32[4,8]) {{
          %w = const f32[20,8] {_h(W)}
          %b = const f32[20] {_h(BIAS)}
          %0: f32[4,20] = linear(%x, %w)
          %1: f32[4,20] = add(%0, %b)
          %2: f32[4,20] = tanh(%1)
          return %2
        }}""",
        _pool(W, BIAS),
    )
    cm = graphc.compile(g, x86, log=lambda *a: None)
    assert any(n.op == "linear_packed" for n in cm.graph.walk())
    assert not any(n.op == "linear" for n in cm.graph.walk())
    x = RNG.standard_normal((4, 8)).astype(np.float32)
    np.testing.assert_allclose(cm.session().run(x)[0], graphc.run_graph(g, x)[0], rtol=1e-5, atol=1e-5)
