"""Attention fusion: the canonical block (BERT, GPT-2, exported SDPA) becomes fused[attention]."""
from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc.passes.pipeline import PASSES, run_pipeline
from graphc.passes.rules import RewriteReport
from graphc.printer import parse_graph
from tests.passes.util import check_pass

EXPECTED_BODY = """
      graph @attention(%in0: f32[2,4,8,16], %in1: f32[2,4,16,8], %in2: f32[2,4,8,16]{mask_in}) {{
        %0: f32[2,4,8,16] = transpose(%in1) {{perm=[0, 1, 3, 2]}}
        %1: f32[2,4,8,16] = scaled_dot_product_attention(%in0, %0, %in2{mask_arg}) {{causal={causal}, scale={scale}, softcap=0.0}}
        return %1
      }}"""


def test_bert_block_with_additive_mask():
    before = """graph @bert(%q: f32[2,4,8,16], %k: f32[2,4,8,16], %v: f32[2,4,8,16], %m: f32[2,1,1,8]) {
      %0: f32[2,4,16,8] = transpose(%k) {perm=[0, 1, 3, 2]}
      %1: f32[2,4,8,8] = matmul(%q, %0)
      %2 = const f32[] 0.25
      %3: f32[2,4,8,8] = mul(%1, %2)
      %4: f32[2,4,8,8] = add(%3, %m)
      %5: f32[2,4,8,8] = softmax(%4) {axis=-1}
      %6: f32[2,4,8,16] = matmul(%5, %v)
      return %6
    }"""
    expected = """graph @bert(%q: f32[2,4,8,16], %k: f32[2,4,8,16], %v: f32[2,4,8,16], %m: f32[2,1,1,8]) {
      %0: f32[2,4,16,8] = transpose(%k) {perm=[0, 1, 3, 2]}
      %1: f32[2,4,8,16] = fused[attention](%q, %0, %v, %m) {""" + EXPECTED_BODY.format(
        mask_in=", %in3: f32[2,1,1,8]", mask_arg=", %in3", causal="false", scale="0.25") + """
      }
      return %1
    }"""
    check_pass("fuse_attention", before, expected, rtol=1e-5, atol=1e-6)


# q.kT * 0.25 as %3, for the tests that mask it with a constant
GPT2_SCALED_SCORES = """graph @gpt2(%q: f32[2,4,8,16], %k: f32[2,4,8,16], %v: f32[2,4,8,16]) {
      %0: f32[2,4,16,8] = transpose(%k) {perm=[0, 1, 3, 2]}
      %1: f32[2,4,8,8] = matmul(%q, %0)
      %2 = const f32[] 0.25
      %3: f32[2,4,8,8] = mul(%1, %2)"""


def test_gpt2_block_with_constant_causal_where_becomes_causal():
    tril = ", ".join("true" if j <= i else "false" for i in range(8) for j in range(8))
    before = GPT2_SCALED_SCORES + f"""
      %4 = const bool[1,1,8,8] [{tril}]
      %5 = const f32[] -3.4028234663852886e+38
      %6: f32[2,4,8,8] = where(%4, %3, %5)
      %7: f32[2,4,8,8] = softmax(%6) {{axis=3}}
      %8: f32[2,4,8,16] = matmul(%7, %v)
      return %8
    }}"""
    # too big to print inline: the mask is a 64-element constant, so only check the rewrite
    fused, sdpa = _fuse_one_attention(before)
    assert fused.kind == "attention" and len(fused.inputs) == 3
    assert sdpa.attrs == {"causal": True, "scale": 0.25, "softcap": 0.0}


def _fuse_one_attention(before: str):
    """Runs fuse_attention on `before`, checks the result numerically, returns (fused node, its sdpa)."""
    g = parse_graph(before)
    out = PASSES["fuse_attention"](g, RewriteReport())
    (fused,) = [n for n in out.nodes if n.op == "fused"]
    ins = [np.random.default_rng(i).standard_normal(v.shape).astype(np.float32) for i, v in enumerate(g.inputs)]
    np.testing.assert_allclose(graphc.run_graph(out, *ins)[0], graphc.run_graph(g, *ins)[0], rtol=1e-5, atol=1e-6)
    return fused, fused.body.nodes[-1]


@pytest.mark.parametrize("above,causal", [(-3.4028234663852886e38, True), (-1.0, False)])
def test_constant_additive_causal_mask_becomes_causal(above, causal):
    """GPT-2's ONNX export adds a constant 0 / finfo.min lower-triangular mask; a mask whose
    'masked' value is not a masking value (-1) stays an additive mask."""
    mask = ", ".join("0.0" if j <= i else repr(above) for i in range(8) for j in range(8))
    before = GPT2_SCALED_SCORES + f"""
      %4 = const f32[1,1,8,8] [{mask}]
      %5: f32[2,4,8,8] = add(%3, %4)
      %6: f32[2,4,8,8] = softmax(%5) {{axis=3}}
      %7: f32[2,4,8,16] = matmul(%6, %v)
      return %7
    }}"""
    fused, sdpa = _fuse_one_attention(before)
    assert sdpa.attrs["causal"] is causal and len(fused.inputs) == (3 if causal else 4)


def test_exported_sdpa_form_after_canonicalize():
    """ONNX exports of SDPA scale q and kT by sqrt(scale) each and transpose k themselves."""
    before = """graph @onnx(%q: f32[2,4,8,16], %k: f32[2,4,8,16], %v: f32[2,4,8,16]) {
      %0 = const f32[] 0.5
      %1: f32[2,4,8,16] = mul(%q, %0)
      %2: f32[2,4,16,8] = transpose(%k) {perm=[0, 1, 3, 2]}
      %3: f32[2,4,16,8] = mul(%2, %0)
      %4: f32[2,4,8,8] = matmul(%1, %3)
      %5: f32[2,4,8,8] = softmax(%4) {axis=-1}
      %6: f32[2,4,8,16] = matmul(%5, %v)
      return %6
    }"""
    g = parse_graph(before)
    out, report = run_pipeline(g, ["canonicalize", "fuse_attention", "canonicalize"], log=lambda s: None)
    assert report.rewrites.count("fuse_attention") == 1
    (fused,) = [n for n in out.nodes if n.op == "fused"]
    assert fused.body.nodes[-1].attrs["scale"] == 0.25
    ins = [np.random.default_rng(i).standard_normal(v.shape).astype(np.float32) for i, v in enumerate(g.inputs)]
    np.testing.assert_allclose(graphc.run_graph(out, *ins)[0], graphc.run_graph(g, *ins)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "change,reason",
    [
        (("softmax(%4) {axis=-1}", "softmax(%4) {axis=2}"), "softmax over axis 2, not over the keys (last axis)"),
        (("return %6", "return %6, %5"), "the result of 'softmax' is also used by a graph output"),
    ],
)
def test_near_misses_say_why(change, reason):
    before = """graph @bad(%q: f32[2,4,8,16], %k: f32[2,4,8,16], %v: f32[2,4,8,16], %m: f32[2,1,1,8]) {
      %0: f32[2,4,16,8] = transpose(%k) {perm=[0, 1, 3, 2]}
      %1: f32[2,4,8,8] = matmul(%q, %0)
      %2 = const f32[] 0.25
      %3: f32[2,4,8,8] = mul(%1, %2)
      %4: f32[2,4,8,8] = add(%3, %m)
      %5: f32[2,4,8,8] = softmax(%4) {axis=-1}
      %6: f32[2,4,8,16] = matmul(%5, %v)
      return %6
    }""".replace(*change)
    out, report = check_pass("fuse_attention", before, None)
    assert report.reasons("fuse_attention") == [reason]


def test_where_fill_that_is_not_a_mask_is_declined():
    before = """graph @w(%q: f32[1,8,4], %k: f32[1,8,4], %v: f32[1,8,4], %c: bool[1,8,8]) {
      %0: f32[1,4,8] = transpose(%k) {perm=[0, 2, 1]}
      %1: f32[1,8,8] = matmul(%q, %0)
      %2 = const f32[] -1.0
      %3: f32[1,8,8] = where(%c, %1, %2)
      %4: f32[1,8,8] = softmax(%3) {axis=-1}
      %5: f32[1,8,4] = matmul(%4, %v)
      return %5
    }"""
    out, report = check_pass("fuse_attention", before, None)
    assert report.reasons("fuse_attention") == ["where() fills with -1.0, not a masking value (<= -10000)"]


def test_fused_attention_compiles_to_the_flash_kernel(x86):
    before = """graph @bert(%q: f32[1,2,40,16], %k: f32[1,2,40,16], %v: f32[1,2,40,16], %m: f32[1,1,1,40]) {
      %0: f32[1,2,16,40] = transpose(%k) {perm=[0, 1, 3, 2]}
      %1: f32[1,2,40,40] = matmul(%q, %0)
      %2 = const f32[] 0.25
      %3: f32[1,2,40,40] = mul(%1, %2)
      %4: f32[1,2,40,40] = add(%3, %m)
      %5: f32[1,2,40,40] = softmax(%4) {axis=-1}
      %6: f32[1,2,40,16] = matmul(%5, %v)
      return %6
    }"""
    g = parse_graph(before)
    compiled = graphc.compile(g, target=x86)
    assert [k.notes for k in compiled.build.kernels if k.label == "fused[attention]"] == [["attention: flash (online softmax)"]]
    rng = np.random.default_rng(0)
    ins = [rng.standard_normal(v.shape).astype(np.float32) for v in g.inputs]
    ins[3][..., 30:] = -1e9  # padding positions
    np.testing.assert_allclose(compiled.session().run(*ins)[0], graphc.run_graph(g, *ins)[0], rtol=1e-5, atol=1e-5)


def test_division_by_a_non_power_of_two_scale():
    before = """graph @d(%q: f32[1,8,12], %k: f32[1,8,12], %v: f32[1,8,12]) {
      %0: f32[1,12,8] = transpose(%k) {perm=[0, 2, 1]}
      %1: f32[1,8,8] = matmul(%q, %0)
      %2 = const f32[] 3.4641016151377544
      %3: f32[1,8,8] = div(%1, %2)
      %4: f32[1,8,8] = softmax(%3) {axis=-1}
      %5: f32[1,8,12] = matmul(%4, %v)
      return %5
    }"""
    g = parse_graph(before)
    out, report = run_pipeline(g, ["canonicalize", "fuse_attention"], log=lambda s: None)
    assert report.rewrites.count("div_by_scalar") == 0  # 1/sqrt(12) is inexact: the division stays
    (fused,) = [n for n in out.nodes if n.op == "fused"]
    assert abs(fused.body.nodes[-1].attrs["scale"] - 1 / 3.4641016151377544) < 1e-7
    ins = [np.random.default_rng(i).standard_normal(v.shape).astype(np.float32) for i, v in enumerate(g.inputs)]
    np.testing.assert_allclose(graphc.run_graph(out, *ins)[0], graphc.run_graph(g, *ins)[0], rtol=1e-5, atol=1e-6)
