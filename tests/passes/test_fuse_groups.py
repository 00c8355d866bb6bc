"""The greedy grouping pass: anchor epilogues, elementwise chains, reduction prologues."""
from __future__ import annotations

from tests.passes.util import check_pass


def test_linear_bias_gelu_residual_becomes_one_epilogue_group():
    check_pass(
        "fuse_groups",
        """graph @g(%x: f32[4,8], %w: f32[16,8], %b: f32[16], %r: f32[4,16]) {
          %0: f32[4,16] = linear(%x, %w)
          %1: f32[4,16] = add(%0, %b)
          %2: f32[4,16] = gelu(%1) {approximate="none"}
          %3: f32[4,16] = add(%2, %r)
          return %3
        }""",
        """graph @g(%x: f32[4,8], %w: f32[16,8], %b: f32[16], %r: f32[4,16]) {
          %0: f32[4,16] = fused[dense_epilogue](%x, %w, %b, %r) {
            graph @dense_epilogue(%in0: f32[4,8], %in1: f32[16,8], %in2: f32[16], %in3: f32[4,16]) {
              %0: f32[4,16] = linear(%in0, %in1)
              %1: f32[4,16] = add(%0, %in2)
              %2: f32[4,16] = gelu(%1) {approximate="none"}
              %3: f32[4,16] = add(%2, %in3)
              return %3
            }
          }
          return %0
        }""",
        rtol=1e-5,
        atol=1e-5,
    )


def test_reduction_takes_its_prologue_and_epilogue():
    check_pass(
        "fuse_groups",
        """graph @g(%x: f32[4,8], %m: f32[4,8]) {
          %0 = const f32[] 0.5
          %1: f32[4,8] = mul(%x, %0)
          %2: f32[4,8] = add(%1, %m)
          %3: f32[4,8] = softmax(%2) {axis=-1}
          %4: f32[4,8] = exp(%x)
          %5: f32[4,8] = tanh(%4)
          %6: f32[4,8] = mul(%3, %5)
          return %6
        }""",
        # everything is one kernel: mul/add are the softmax's prologue; exp/tanh feed its epilogue
        """graph @g(%x: f32[4,8], %m: f32[4,8]) {
          %0: f32[4,8] = fused[softmax](%x, %m) {
            graph @softmax(%in0: f32[4,8], %in1: f32[4,8]) {
              %0 = const f32[] 0.5
              %1: f32[4,8] = mul(%in0, %0)
              %2: f32[4,8] = add(%1, %in1)
              %3: f32[4,8] = softmax(%2) {axis=-1}
              %4: f32[4,8] = exp(%in0)
              %5: f32[4,8] = tanh(%4)
              %6: f32[4,8] = mul(%3, %5)
              return %6
            }
          }
          return %0
        }""",
    )


def test_shared_values_and_anchor_inputs_are_not_fused():
    # x*2 feeds two consumers (stays its own kernel); relu feeds a matmul's input (no prologue fusion)
    check_pass(
        "fuse_groups",
        """graph @g(%x: f32[4,4], %w: f32[4,4]) {
          %0 = const f32[] 2.0
          %1: f32[4,4] = mul(%x, %0)
          %2: f32[4,4] = relu(%1)
          %3: f32[4,4] = matmul(%2, %w)
          %4: f32[4,4] = exp(%1)
          %5: f32[4,4] = add(%3, %4)
          return %5
        }""",
        """graph @g(%x: f32[4,4], %w: f32[4,4]) {
          %0 = const f32[] 2.0
          %1: f32[4,4] = mul(%x, %0)
          %2: f32[4,4] = relu(%1)
          %3: f32[4,4] = exp(%1)
          %4: f32[4,4] = fused[matmul_epilogue](%2, %w, %3) {
            graph @matmul_epilogue(%in0: f32[4,4], %in1: f32[4,4], %in2: f32[4,4]) {
              %0: f32[4,4] = matmul(%in0, %in1)
              %1: f32[4,4] = add(%0, %in2)
              return %1
            }
          }
          return %4
        }""",
    )


def test_pure_elementwise_chain():
    check_pass(
        "fuse_groups",
        """graph @g(%x: f32[3,5], %y: f32[5]) {
          %0: f32[3,5] = exp(%x)
          %1: f32[3,5] = add(%0, %y)
          %2: f32[3,5] = sigmoid(%1)
          return %2
        }""",
        """graph @g(%x: f32[3,5], %y: f32[5]) {
          %0: f32[3,5] = fused[elementwise](%x, %y) {
            graph @elementwise(%in0: f32[3,5], %in1: f32[5]) {
              %0: f32[3,5] = exp(%in0)
              %1: f32[3,5] = add(%0, %in1)
              %2: f32[3,5] = sigmoid(%1)
              return %2
            }
          }
          return %0
        }""",
    )


def test_grouped_graphs_compile_to_one_kernel_per_group(x86):
    import numpy as np

    import graphc
    from graphc.printer import parse_graph

    g = parse_graph(
        """graph @g(%x: f32[16,32], %w: f32[64,32], %b: f32[64], %r: f32[16,64]) {
          %0: f32[16,64] = linear(%x, %w)
          %1: f32[16,64] = add(%0, %b)
          %2: f32[16,64] = gelu(%1) {approximate="tanh"}
          %3: f32[16,64] = add(%2, %r)
          %4: f32[16,64] = softmax(%3) {axis=-1}
          %5: f32[16,64] = exp(%4)
          return %5
        }"""
    )
    compiled = graphc.compile(g, target=x86)
    assert [k.label for k in compiled.build.kernels] == ["fused[dense_epilogue]", "fused[softmax]"]
    assert compiled.build.kernels[0].notes == ["dense: blocked"]
    rng = np.random.default_rng(0)
    ins = [rng.standard_normal(v.shape).astype(np.float32) for v in g.inputs]
    np.testing.assert_allclose(compiled.session().run(*ins)[0], graphc.run_graph(g, *ins)[0], rtol=1e-5, atol=1e-5)
