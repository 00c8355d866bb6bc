"""fold_constants, cse, dce and the pipeline driver: structure (BEFORE/EXPECTED text) and numerics."""
from __future__ import annotations

import numpy as np
import pytest

from graphc.passes import pipeline
from graphc.passes.cse import cse
from graphc.passes.fold_constants import fold_constants
from graphc.passes.pipeline import PassError, run_pipeline
from graphc.printer import parse_graph
from tests.passes.util import check_pass


def test_fold_constants_folds_constant_subgraphs():
    check_pass(
        "fold_constants",
        """graph @f(%x: f32[3]) {
          %0 = const f32[3] [1.0, 2.0, 3.0]
          %1 = const f32[] 2.0
          %2: f32[3] = mul(%0, %1)
          %3: f32[3] = exp(%2)
          %4: f32[3] = add(%x, %3)
          return %4
        }""",
        f"""graph @f(%x: f32[3]) {{
          %0 = const f32[3] [{', '.join(repr(float(v)) for v in np.exp(np.array([2, 4, 6], np.float32)))}]
          %1: f32[3] = add(%x, %0)
          return %1
        }}""",
    )


def test_fold_constants_declines_to_expand_data():
    text = """graph @f(%x: f32[64,64]) {
      %0 = const f32[] 0.0
      %1: f32[64,64] = maximum(%x, %0)
      return %1
    }"""
    g = parse_graph(text)
    assert fold_constants(g).structurally_equal(g)


def test_cse_merges_identical_nodes_and_constants():
    check_pass(
        "cse",
        """graph @c(%x: f32[4]) {
          %0 = const f32[] 1.0
          %1 = const f32[] 1.0
          %2: f32[4] = add(%x, %0)
          %3: f32[4] = add(%x, %1)
          %4: f32[4] = exp(%2)
          %5: f32[4] = exp(%3)
          %6: f32[4] = mul(%4, %5)
          return %6
        }""",
        """graph @c(%x: f32[4]) {
          %0 = const f32[] 1.0
          %1: f32[4] = add(%x, %0)
          %2: f32[4] = exp(%1)
          %3: f32[4] = mul(%2, %2)
          return %3
        }""",
    )


def test_cse_keeps_different_attributes_apart():
    text = """graph @c(%x: f32[4]) {
      %0: f32[4] = gelu(%x) {approximate="none"}
      %1: f32[4] = gelu(%x) {approximate="tanh"}
      %2: f32[4] = add(%0, %1)
      return %2
    }"""
    g = parse_graph(text)
    assert cse(g).structurally_equal(g)


def test_dce_removes_dead_nodes():
    check_pass(
        "dce",
        """graph @d(%x: f32[4]) {
          %0: f32[4] = exp(%x)
          %1: f32[4] = log(%x)
          %2: f32[4] = relu(%0)
          return %2
        }""",
        """graph @d(%x: f32[4]) {
          %0: f32[4] = exp(%x)
          %1: f32[4] = relu(%0)
          return %1
        }""",
    )


def test_pipeline_reports_times_and_verifies(capsys):
    g = parse_graph(
        """graph @p(%x: f32[4]) {
          %0 = const f32[] 3.0
          %1 = const f32[] 3.0
          %2: f32[4] = mul(%x, %0)
          %3: f32[4] = mul(%x, %1)
          %4: f32[4] = add(%2, %3)
          %5: f32[4] = exp(%x)
          return %4
        }"""
    )
    out, report = run_pipeline(g, ["fold_constants", "cse", "dce"], print_after=("cse",), verify_numerics=True)
    assert report.passes == ["fold_constants", "cse", "dce"]
    assert all(t >= 0 for t in report.seconds.values())
    assert report.node_counts["dce"] == 2
    assert "IR after cse" in capsys.readouterr().out


def test_pipeline_names_the_pass_that_breaks_numerics(monkeypatch):
    def bad_pass(g, report=None):
        from graphc.passes.rewrite import map_nodes

        def visit(b, node, ins):
            if node.op == "exp":
                return [b.emit("log", ins)[0]]
            return None

        return map_nodes(g, visit)

    monkeypatch.setitem(pipeline.PASSES, "bad", bad_pass)
    g = parse_graph("graph @p(%x: f32[4]) {\n  %0: f32[4] = exp(%x)\n  return %0\n}")
    with pytest.raises(PassError, match=r"pass 'bad' changed output 0.*passes before it: cse"):
        run_pipeline(g, ["cse", "bad"], verify_numerics=True)


def test_pipeline_names_the_pass_that_breaks_the_graph(monkeypatch):
    def breaking(g, report=None):
        c = g.clone()
        c.nodes.reverse()
        return c

    monkeypatch.setitem(pipeline.PASSES, "breaking", breaking)
    g = parse_graph("graph @p(%x: f32[4]) {\n  %0: f32[4] = exp(%x)\n  %1: f32[4] = log(%0)\n  return %1\n}")
    with pytest.raises(PassError, match=r"pass 'breaking' produced an invalid graph \(after dce\)"):
        run_pipeline(g, ["dce", "breaking"])


def test_unknown_pass_and_level():
    g = parse_graph("graph @p(%x: f32[4]) {\n  return %x\n}")
    with pytest.raises(PassError, match="unknown pass 'nope'"):
        run_pipeline(g, ["nope"])
    with pytest.raises(PassError, match="unknown optimization level -O9"):
        pipeline.passes_for_level(9)


def test_dump_ir_writes_one_file_per_pass(tmp_path):
    g = parse_graph("graph @p(%x: f32[4]) {\n  %0: f32[4] = exp(%x)\n  return %0\n}")
    run_pipeline(g, ["cse", "dce"], dump_dir=str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00_input.gir", "01_cse.gir", "02_dce.gir"]
    parse_graph((tmp_path / "02_dce.gir").read_text())
