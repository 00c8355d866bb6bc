"""Batch-norm folding, layer-norm / GELU recognition and conv-bias-relu-pool fusion:
BEFORE/EXPECTED structure, numerics on the interpreter, and decline reasons."""
from __future__ import annotations

import numpy as np

from graphc.passes.pipeline import PASSES
from graphc.passes.rules import RewriteReport
from graphc.printer import parse_graph
from tests.passes.util import check_pass


def test_fold_batch_norm_into_conv_with_bias():
    w = np.array([1.0, 2.0], np.float32).reshape(2, 1, 1, 1)
    gamma, beta, mean, var = (np.array(v, np.float32) for v in ([2.0, 0.5], [1.0, -1.0], [0.5, 0.25], [3.0, 0.0]))
    eps = 1.0
    s = gamma / np.sqrt(var + eps)
    new_w = (w * s.reshape(2, 1, 1, 1)).reshape(-1)
    new_b = ((np.array([0.1, 0.2], np.float32) - mean) * s + beta).astype(np.float32)
    f = lambda a: ", ".join(repr(float(v)) for v in np.asarray(a, np.float32).reshape(-1))  # noqa: E731
    check_pass(
        "fold_batch_norm",
        f"""graph @g(%x: f32[1,1,4,4]) {{
          %w = const f32[2,1,1,1] [{f(w)}]
          %0: f32[1,2,4,4] = conv2d(%x, %w) {{dilation=[1, 1], groups=1, pad=[0, 0, 0, 0], stride=[1, 1]}}
          %b = const f32[2,1,1] [0.1, 0.2]
          %1: f32[1,2,4,4] = add(%0, %b)
          %g = const f32[2] [{f(gamma)}]
          %be = const f32[2] [{f(beta)}]
          %m = const f32[2] [{f(mean)}]
          %v = const f32[2] [{f(var)}]
          %2: f32[1,2,4,4] = batch_norm(%1, %g, %be, %m, %v) {{eps={eps}}}
          return %2
        }}""",
        f"""graph @g(%x: f32[1,1,4,4]) {{
          %w = const f32[2,1,1,1] [{f(new_w)}]
          %0: f32[1,2,4,4] = conv2d(%x, %w) {{dilation=[1, 1], groups=1, pad=[0, 0, 0, 0], stride=[1, 1]}}
          %1 = const f32[2,1,1] [{f(new_b)}]
          %2: f32[1,2,4,4] = add(%0, %1)
          return %2
        }}""",
    )


def test_fold_batch_norm_declines_when_the_conv_output_is_shared():
    text = """graph @g(%x: f32[1,1,2,2]) {
      %w = const f32[2,1,1,1] [1.0, 2.0]
      %0: f32[1,2,2,2] = conv2d(%x, %w) {dilation=[1, 1], groups=1, pad=[0, 0, 0, 0], stride=[1, 1]}
      %g = const f32[2] [1.0, 1.0]
      %b = const f32[2] [0.0, 0.0]
      %v = const f32[2] [1.0, 1.0]
      %1: f32[1,2,2,2] = batch_norm(%0, %g, %b, %b, %v) {eps=0.0}
      %2: f32[1,2,2,2] = add(%0, %1)
      return %2
    }"""
    out, report = check_pass("fold_batch_norm", text, _affine_expected(), rtol=1e-5)
    assert report.reasons("fold_batch_norm_conv") == ["the result of 'conv2d' is also used by 'add'"]


def _affine_expected():
    # the unfoldable batch norm still becomes its per-channel affine form
    return """graph @g(%x: f32[1,1,2,2]) {
      %w = const f32[2,1,1,1] [1.0, 2.0]
      %0: f32[1,2,2,2] = conv2d(%x, %w) {dilation=[1, 1], groups=1, pad=[0, 0, 0, 0], stride=[1, 1]}
      %1 = const f32[2,1,1] [1.0, 1.0]
      %2: f32[1,2,2,2] = mul(%0, %1)
      %3 = const f32[2,1,1] [0.0, 0.0]
      %4: f32[1,2,2,2] = add(%2, %3)
      %5: f32[1,2,2,2] = add(%0, %4)
      return %5
    }"""


LAYER_NORM = """graph @g(%x: f32[2,4,8], %w: f32[8], %b: f32[8]) {{
  %0: f32[2,4,1] = mean(%x) {{axes=[{axis}], keepdims=true}}
  %1: f32[2,4,8] = sub(%x, %0)
  %2: f32[2,4,8] = mul(%1, %1)
  %3: f32[2,4,1] = mean(%2) {{axes=[{axis}], keepdims=true}}
  %4 = const f32[] 1e-05
  %5: f32[2,4,1] = add(%3, %4)
  %6: f32[2,4,1] = rsqrt(%5)
  %7: f32[2,4,8] = mul(%1, %6)
  %8: f32[2,4,8] = mul(%7, %w)
  %9: f32[2,4,8] = add(%8, %b)
  return %9
}}"""


def test_layer_norm_decomposition_becomes_one_op():
    check_pass(
        "fuse_layer_norm",
        LAYER_NORM.format(axis=2),
        """graph @g(%x: f32[2,4,8], %w: f32[8], %b: f32[8]) {
          %0: f32[2,4,8] = layer_norm(%x, %w, %b) {axis=2, eps=1e-05}
          return %0
        }""",
        rtol=1e-4,
        atol=1e-5,
    )


def test_layer_norm_over_a_leading_axis_is_declined():
    text = LAYER_NORM.format(axis=1).replace("f32[2,4,1] = mean(%x)", "f32[2,1,8] = mean(%x)").replace(
        "%3: f32[2,4,1]", "%3: f32[2,1,8]").replace("%5: f32[2,4,1]", "%5: f32[2,1,8]").replace("%6: f32[2,4,1]", "%6: f32[2,1,8]")
    g = parse_graph(text)
    report = RewriteReport()
    out = PASSES["fuse_layer_norm"](g, report)
    assert out.structurally_equal(g)
    assert report.reasons("fuse_layer_norm") == ["mean over axes (1,) of a rank-3 tensor is not a trailing-axes normalization"]


def test_gelu_forms_become_gelu_ops():
    check_pass(
        "fuse_gelu",
        """graph @g(%x: f32[16]) {
          %0 = const f32[] 0.7071067811865476
          %1: f32[16] = mul(%x, %0)
          %2: f32[16] = erf(%1)
          %3 = const f32[] 1.0
          %4: f32[16] = add(%2, %3)
          %5 = const f32[] 0.5
          %6: f32[16] = mul(%4, %5)
          %7: f32[16] = mul(%x, %6)
          %8: f32[16] = mul(%x, %x)
          %9: f32[16] = mul(%8, %x)
          %10 = const f32[] 0.044715
          %11: f32[16] = mul(%9, %10)
          %12: f32[16] = add(%x, %11)
          %13 = const f32[] 0.7978845608028654
          %14: f32[16] = mul(%12, %13)
          %15: f32[16] = tanh(%14)
          %16: f32[16] = add(%15, %3)
          %17: f32[16] = mul(%x, %5)
          %18: f32[16] = mul(%17, %16)
          return %7, %18
        }""",
        """graph @g(%x: f32[16]) {
          %0: f32[16] = gelu(%x) {approximate="none"}
          %1: f32[16] = gelu(%x) {approximate="tanh"}
          return %0, %1
        }""",
        rtol=1e-5,
        atol=1e-6,
    )


def test_gelu_declined_when_an_intermediate_escapes():
    text = """graph @g(%x: f32[16]) {
      %0 = const f32[] 0.7071067811865476
      %1: f32[16] = mul(%x, %0)
      %2: f32[16] = erf(%1)
      %3 = const f32[] 1.0
      %4: f32[16] = add(%2, %3)
      %5 = const f32[] 0.5
      %6: f32[16] = mul(%4, %5)
      %7: f32[16] = mul(%x, %6)
      return %7, %2
    }"""
    out, report = check_pass("fuse_gelu", text, None)
    assert report.reasons("fuse_gelu") == ["the result of 'erf' is also used by a graph output"]


CONV_POOL = """graph @g(%x: f32[1,3,{hw},{hw}]) {{
  %w = const f32[{oc},3,3,3] #{w}
  %0: f32[1,{oc},{hw},{hw}] = conv2d(%x, %w) {{dilation=[1, 1], groups=1, pad=[1, 1, 1, 1], stride=[1, 1]}}
  %b = const f32[{oc},1,1] #{b}
  %1: f32[1,{oc},{hw},{hw}] = add(%0, %b)
  %2: f32[1,{oc},{hw},{hw}] = relu(%1)
  %3: f32[1,{oc},{p},{p}] = max_pool2d(%2) {{ceil_mode=false, dilation=[1, 1], kernel=[{k}, {k}], pad=[{pp}, {pp}, {pp}, {pp}], stride=[2, 2]}}
  return %3
}}"""


def _conv_pool_graph(oc: int, hw: int, k: int, pad: int):
    from graphc.ir import const_hash

    rng = np.random.default_rng(0)
    w = rng.standard_normal((oc, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal((oc, 1, 1)).astype(np.float32)
    p = (hw + 2 * pad - k) // 2 + 1
    text = CONV_POOL.format(hw=hw, oc=oc, k=k, pp=pad, p=p, w=const_hash(w), b=const_hash(b))
    return text, {const_hash(w): w, const_hash(b): b}


def test_conv_bias_relu_pool_becomes_one_group():
    text, consts = _conv_pool_graph(oc=16, hw=8, k=2, pad=0)
    expected = """graph @g(%x: f32[1,3,8,8]) {
      %w = const f32[16,3,3,3] #W
      %b = const f32[16,1,1] #B
      %0: f32[1,16,4,4] = fused[conv_bias_relu_pool](%x, %w, %b) {
        graph @conv_bias_relu_pool(%in0: f32[1,3,8,8], %in1: f32[16,3,3,3], %in2: f32[16,1,1]) {
          %0: f32[1,16,8,8] = conv2d(%in0, %in1) {dilation=[1, 1], groups=1, pad=[1, 1, 1, 1], stride=[1, 1]}
          %1: f32[1,16,4,4] = max_pool2d(%0) {ceil_mode=false, dilation=[1, 1], kernel=[2, 2], pad=[0, 0, 0, 0], stride=[2, 2]}
          %2: f32[1,16,4,4] = add(%1, %in2)
          %3: f32[1,16,4,4] = relu(%2)
          return %3
        }
      }
      return %0
    }"""
    # the max pool goes first: it commutes with the per-channel bias and the ReLU (a quarter of
    # the elements to add and clamp); check_pass also compares the values before and after
    hashes = list(consts)
    expected = expected.replace("#W", "#" + hashes[0]).replace("#B", "#" + hashes[1])
    check_pass("fuse_conv_pool", text, expected, constants=consts, rtol=1e-5, atol=1e-5)


def test_overlapping_pool_that_does_not_pay_is_declined_with_the_numbers():
    # ResNet's stem: a 7x7/2 conv on 224x224, then a 3x3/2 max pool whose windows overlap;
    # recomputing the shared conv rows costs more than the traffic fusion saves
    rng = np.random.default_rng(0)
    consts = {}
    from graphc.ir import const_hash

    w = rng.standard_normal((64, 3, 7, 7)).astype(np.float32) * 0.05
    consts[const_hash(w)] = w
    text = f"""graph @stem(%x: f32[1,3,224,224]) {{
      %w = const f32[64,3,7,7] #{const_hash(w)}
      %0: f32[1,64,112,112] = conv2d(%x, %w) {{dilation=[1, 1], groups=1, pad=[3, 3, 3, 3], stride=[2, 2]}}
      %1: f32[1,64,112,112] = relu(%0)
      %2: f32[1,64,56,56] = max_pool2d(%1) {{ceil_mode=false, dilation=[1, 1], kernel=[3, 3], pad=[1, 1, 1, 1], stride=[2, 2]}}
      return %2
    }}"""
    out, report = check_pass("fuse_conv_pool", text, None, constants=consts, rtol=1e-4, atol=1e-4)
    (reason,) = report.reasons("fuse_conv_pool")
    assert reason == (
        "overlapping 3x3/2 pool windows: fusing recomputes 50% of the conv rows (118 MFLOP, ~1.18 ms) "
        "to save 6.4 MB of traffic (~0.32 ms): does not pay"
    )


def test_pool_after_an_odd_channel_count_is_declined():
    text, consts = _conv_pool_graph(oc=6, hw=8, k=2, pad=0)
    out, report = check_pass("fuse_conv_pool", text, None, constants=consts, rtol=1e-5, atol=1e-5)
    assert report.reasons("fuse_conv_pool") == [
        "6 output channels (not a multiple of 4): no register-blocked kernel to fuse the pool into"
    ]
