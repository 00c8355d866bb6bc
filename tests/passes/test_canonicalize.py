"""canonicalize: identities vanish, scales move onto matmul results, views become reshapes."""
from __future__ import annotations

from tests.passes.util import check_pass


def test_identities_and_inference_dropout_vanish():
    check_pass(
        "canonicalize",
        """graph @g(%x: f32[2,3]) {
          %0 = const f32[] 1.0
          %1 = const f32[] 0.0
          %2: f32[2,3] = mul(%x, %0)
          %3: f32[2,3] = add(%1, %2)
          %4: f32[2,3] = dropout(%3) {p=0.1}
          %5: f32[2,3] = neg(%4)
          %6: f32[2,3] = neg(%5)
          %7: f32[2,3] = cast(%6) {dtype="f32"}
          %8: f32[2,3] = transpose(%7) {perm=[0, 1]}
          %9: f32[2,3] = reshape(%8) {shape=[2, 3]}
          %10: f32[2,3] = div(%9, %0)
          %11: f32[2,3] = exp(%10)
          return %11
        }""",
        """graph @g(%x: f32[2,3]) {
          %0: f32[2,3] = exp(%x)
          return %0
        }""",
    )


def test_identity_that_changes_the_type_is_kept_with_a_reason():
    # x is 0-d, the one is [1,1]: dropping the multiply would change the result's shape
    out, report = check_pass(
        "canonicalize",
        """graph @g(%x: f32[]) {
          %0 = const f32[1,1] [1.0]
          %1: f32[1,1] = mul(%x, %0)
          return %1
        }""",
        None,
    )
    assert report.reasons("mul_by_one") == ["the operation changes the type (broadcast or dtype)"]


def test_scales_move_onto_the_scores():
    """An ONNX-exported SDPA scales q and kT by sqrt(scale) each; BERT divides the scores."""
    check_pass(
        "canonicalize",
        """graph @g(%q: f32[2,8,16], %k: f32[2,8,16]) {
          %0 = const f32[] 0.5
          %1: f32[2,8,16] = mul(%q, %0)
          %2: f32[2,16,8] = transpose(%k) {perm=[0, 2, 1]}
          %3: f32[2,16,8] = mul(%2, %0)
          %4: f32[2,8,8] = matmul(%1, %3)
          %5 = const f32[] 2.0
          %6: f32[2,8,8] = div(%4, %5)
          return %6
        }""",
        """graph @g(%q: f32[2,8,16], %k: f32[2,8,16]) {
          %0: f32[2,16,8] = transpose(%k) {perm=[0, 2, 1]}
          %1: f32[2,8,8] = matmul(%q, %0)
          %2 = const f32[] 0.125
          %3: f32[2,8,8] = mul(%1, %2)
          return %3
        }""",
    )


def test_views_become_reshapes_and_chains_collapse():
    check_pass(
        "canonicalize",
        """graph @g(%x: f32[2,3,4]) {
          %0: f32[2,12] = flatten(%x) {end_dim=-1, start_dim=1}
          %1: f32[2,1,12] = unsqueeze(%0) {axes=[1]}
          %2: f32[24] = reshape(%1) {shape=[24]}
          %3: f32[4,3,2] = transpose(%x) {perm=[2, 1, 0]}
          %4: f32[3,4,2] = transpose(%3) {perm=[1, 0, 2]}
          return %2, %4
        }""",
        """graph @g(%x: f32[2,3,4]) {
          %0: f32[24] = reshape(%x) {shape=[24]}
          %1: f32[3,4,2] = transpose(%x) {perm=[1, 2, 0]}
          return %0, %1
        }""",
    )


def test_powers_and_reciprocal_square_roots():
    check_pass(
        "canonicalize",
        """graph @g(%x: f32[5], %y: f32[5]) {
          %0 = const f32[] 2.0
          %1: f32[5] = pow(%x, %0)
          %2: f32[5] = sqrt(%y)
          %3: f32[5] = div(%1, %2)
          return %3
        }""",
        """graph @g(%x: f32[5], %y: f32[5]) {
          %0: f32[5] = mul(%x, %x)
          %1: f32[5] = rsqrt(%y)
          %2: f32[5] = mul(%0, %1)
          return %2
        }""",
    )
