"""IR core: types, builder, printer/parser round trips, verify errors, structural equality, networkx."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import graphc
from graphc import ops
from graphc.errors import IRError, ParseError, TypeInferenceError, VerifyError
from graphc.ir import Graph, GraphBuilder, Node, TensorType
from graphc.nxgraph import to_dot, to_networkx, topological_nodes
from graphc.printer import parse_graph, print_graph
from graphc.tensor import Tensor
from graphc.verify import verify
from tests.conftest import assert_roundtrip


def small_graph():
    b = GraphBuilder("small")
    x = Tensor(b.input("x", TensorType("f32", (2, 3))))
    w = graphc.param("w", np.arange(6, dtype=np.float32).reshape(2, 3) / 10)
    with b:
        y = ops.relu(x * 2.0 + w)
        z = ops.exp(y) - y
    return b.build([z.value, y.value], ["z", "y"])


def test_tensor_type_basics():
    t = TensorType("f32", (2, 3))
    assert str(t) == "f32[2,3]" and t.rank == 2 and t.numel == 6
    assert str(TensorType("bool", ())) == "bool[]"
    with pytest.raises(IRError, match="unknown dtype"):
        TensorType("f128", (1,))
    with pytest.raises(IRError, match="negative"):
        TensorType("f32", (-1,))


@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16", "f64", "i64", "i32", "i16", "i8", "u64", "u32", "u16", "u8", "bool"])
def test_every_dtype_prints_and_parses(dtype):
    b = GraphBuilder("d")
    x = b.input("x", TensorType(dtype, (4,)))
    g = b.build([x])
    assert_roundtrip(g)


def test_print_format_is_readable():
    text = print_graph(small_graph())
    assert text.splitlines()[0] == "graph @small(%x: f32[2,3]) {"
    assert "%w = const f32[2,3] [0.0, 0.1" in text
    assert "%0 = const f32[] 2.0" in text and "%1: f32[2,3] = mul(%x, %0)" in text
    assert text.splitlines()[-2] == "  return %5 as z, %3 as y"


def test_roundtrip_small_graph():
    assert_roundtrip(small_graph())


def test_roundtrip_large_constant_uses_hash_pool():
    b = GraphBuilder("big")
    x = Tensor(b.input("x", TensorType("f32", (64,))))
    with b:
        y = x + np.linspace(0, 1, 64, dtype=np.float32)
    g = b.build([y.value])
    text = print_graph(g)
    assert "#" in text
    assert_roundtrip(g)
    with pytest.raises(ParseError, match="not in the constant pool"):
        parse_graph(text)


def test_roundtrip_quoted_names_locs_and_special_floats():
    b = GraphBuilder("q")
    x = Tensor(b.input("input:0", TensorType("f32", (3,))))
    with b:
        y = ops.maximum(x, np.array([np.inf, -np.inf, 1.5], np.float32), _loc="/layer.0/Max")
        z = ops.where(ops.less(y, np.float32(0)), np.float32(np.nan), y)
    g = b.build([z.value], ["out put"])
    text = print_graph(g)
    assert '%"input:0"' in text and 'loc("/layer.0/Max")' in text and 'as "out put"' in text
    parsed = assert_roundtrip(g)
    assert parsed.nodes[-4].loc == "/layer.0/Max" or any(n.loc == "/layer.0/Max" for n in parsed.nodes)


def test_roundtrip_fused_node_and_multiple_results():
    inner = GraphBuilder("body")
    a = Tensor(inner.input("a", TensorType("f32", (4,))))
    with inner:
        r = ops.relu(a + 1.0)
    body = inner.build([r.value, a.value])
    outer = GraphBuilder("outer")
    x = outer.input("x", TensorType("f32", (4,)))
    r1, r2 = outer.emit("fused", [x], {"kind": "elementwise", "note": "test"}, body=body)
    g = outer.build([r1, r2])
    text = print_graph(g)
    assert "= fused[elementwise](%x) {note=\"test\"} {" in text
    assert "%0: f32[4], %1: f32[4] = fused" in text
    assert_roundtrip(g)
    out = graphc.run_graph(g, np.array([-2, -1, 0, 1], np.float32))
    np.testing.assert_array_equal(out[0], [0, 0, 1, 2])


def test_parse_errors_name_line_and_problem():
    with pytest.raises(ParseError, match=r"line 2.*undefined value %y"):
        parse_graph("graph @g(%x: f32[2]) {\n  %0: f32[2] = relu(%y)\n  return %0\n}")
    with pytest.raises(ParseError, match=r"line 2.*declared type f32\[3\].*inferred f32\[2\]"):
        parse_graph("graph @g(%x: f32[2]) {\n  %0: f32[3] = relu(%x)\n  return %0\n}")
    with pytest.raises(ParseError, match="unknown op 'frobnicate'"):
        parse_graph("graph @g(%x: f32[2]) {\n  %0: f32[2] = frobnicate(%x)\n  return %0\n}")
    with pytest.raises(ParseError, match="defined twice"):
        parse_graph("graph @g(%x: f32[2]) {\n  %0: f32[2] = relu(%x)\n  %0: f32[2] = relu(%x)\n  return %0\n}")
    with pytest.raises(ParseError, match="end of input"):
        parse_graph("graph @g(%x: f32[2]) {\n  %0: f32[2] = relu(%x)\n")
    with pytest.raises(ParseError, match="unknown dtype"):
        parse_graph("graph @g(%x: q7[2]) {\n  return %x\n}")


def test_builder_rejects_bad_types_with_op_name():
    b = GraphBuilder("bad")
    x = b.input("x", TensorType("f32", (2, 3)))
    y = b.input("y", TensorType("f32", (4,)))
    with pytest.raises(TypeInferenceError, match=r"add.*do not broadcast"):
        b.emit("add", [x, y])
    i = b.input("i", TensorType("i64", (2, 3)))
    with pytest.raises(TypeInferenceError, match="dtypes differ: f32 vs i64"):
        b.emit("mul", [x, i])
    with pytest.raises(TypeInferenceError, match="has no attribute"):
        b.emit("relu", [x], {"alpha": 1})


def test_verify_names_the_node():
    g = small_graph()
    verify(g)
    # use before definition: swap two dependent nodes
    bad = g.clone()
    compute = [n for n in bad.nodes if n.op != "const"]
    i, j = bad.nodes.index(compute[0]), bad.nodes.index(compute[1])
    bad.nodes[i], bad.nodes[j] = bad.nodes[j], bad.nodes[i]
    with pytest.raises(VerifyError, match=r"node #\d+ 'add'.*used before it is defined"):
        verify(bad)
    # wrong output type
    bad = g.clone()
    node = next(n for n in bad.nodes if n.op == "relu")
    node.outputs[0].type = TensorType("f32", (3, 2))
    with pytest.raises(VerifyError, match=r"'relu'.*differ from the op's inference"):
        verify(bad)
    # dangling value: an output nobody defines
    bad = g.clone()
    bad.outputs.append(Node("relu", [bad.inputs[0]], {}, [TensorType("f32", (2, 3))]).outputs[0])
    with pytest.raises(VerifyError, match="output 2 .* not defined"):
        verify(bad)
    # duplicate input names
    bad = g.clone()
    extra = graphc.Value(TensorType("f32", (1,)), "x")
    bad.inputs.append(extra)
    with pytest.raises(VerifyError, match="two inputs are named 'x'"):
        verify(bad)


def test_structural_equality_ignores_names_and_order():
    def build(order):
        b = GraphBuilder("s")
        x = Tensor(b.input("x", TensorType("f32", (4,))))
        with b:
            if order:
                a, c = ops.exp(x), ops.log(x)
            else:
                c, a = ops.log(x), ops.exp(x)
            out = a + c
        return b.build([out.value])

    assert build(True).structurally_equal(build(False))
    b = GraphBuilder("s")
    x = Tensor(b.input("x", TensorType("f32", (4,))))
    with b:
        out = ops.exp(x) * ops.log(x)
    assert not build(True).structurally_equal(b.build([out.value]))


def test_structural_equality_sees_sharing():
    def build(shared):
        b = GraphBuilder("s")
        x = Tensor(b.input("x", TensorType("f32", (4,))))
        with b:
            e1 = ops.exp(x)
            e2 = e1 if shared else ops.exp(x)
            out = e1 + e2
        return b.build([out.value])

    assert not build(True).structurally_equal(build(False))
    assert build(True).structurally_equal(build(True))


def test_networkx_and_dot():
    g = small_graph()
    nxg = to_networkx(g)
    assert nx.is_directed_acyclic_graph(nxg)
    assert nxg.number_of_nodes() == len(g.inputs) + len(g.nodes) + len(g.outputs)
    order = topological_nodes(g)
    assert order == g.nodes
    dot = to_dot(g)
    assert dot.startswith('digraph "small"') and "relu" in dot and "->" in dot


def test_clone_is_deep_and_equal():
    g = small_graph()
    c = g.clone()
    assert c.structurally_equal(g)
    assert not set(c.nodes) & set(g.nodes)
    assert print_graph(c) == print_graph(g)


def test_graph_walk_and_op_counts():
    g = small_graph()
    assert g.op_counts() == {"mul": 1, "add": 1, "relu": 1, "exp": 1, "sub": 1}
    assert isinstance(g, Graph) and len(list(g.walk())) == len(g.nodes)
