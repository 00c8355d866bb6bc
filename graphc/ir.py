"""graphc IR: a typed SSA dataflow graph.

A `Graph` has input `Value`s, a list of `Node`s in topological order and output
`Value`s. Every `Value` is defined exactly once: by the graph (an input) or by a
node (one of its outputs). Constants are nodes of op ``const`` carrying a numpy
array. A fused group is a node of op ``fused`` whose ``body`` is a Graph; its
``attrs["kind"]`` says what it is (``conv_bias_relu_pool``, ``attention``...).

Graphs are built with a `GraphBuilder`, which runs each op's type inference as
nodes are emitted, so a built graph is well typed by construction. Passes treat
graphs as values: they build a new graph rather than editing one in place.
"""
from __future__ import annotations

import contextvars
import hashlib
import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from . import dtypes
from .errors import IRError, TypeInferenceError


@dataclass(frozen=True)
class TensorType:
    dtype: str
    shape: tuple[int, ...]

    def __post_init__(self):
        dtypes.check(self.dtype)
        shape = tuple(int(d) for d in self.shape)
        if any(d < 0 for d in shape):
            raise IRError(f"negative dimension in shape {list(shape)}")
        object.__setattr__(self, "shape", shape)

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def np_dtype(self) -> np.dtype:
        return dtypes.to_numpy(self.dtype)

    def with_shape(self, shape: Sequence[int]) -> "TensorType":
        return TensorType(self.dtype, tuple(shape))

    def with_dtype(self, dtype: str) -> "TensorType":
        return TensorType(dtype, self.shape)

    @staticmethod
    def of(array: np.ndarray) -> "TensorType":
        return TensorType(dtypes.from_numpy(array.dtype), tuple(array.shape))

    def __str__(self) -> str:
        return f"{self.dtype}[{','.join(map(str, self.shape))}]"


class Value:
    """An SSA value: a graph input or one output of a node."""

    __slots__ = ("type", "name", "node", "index")

    def __init__(self, type: TensorType, name: str | None = None, node: "Node | None" = None, index: int = 0):
        self.type = type
        self.name = name
        self.node = node  # producing node, None for graph inputs
        self.index = index  # which output of `node`

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> str:
        return self.type.dtype

    @property
    def is_const(self) -> bool:
        return self.node is not None and self.node.op == "const"

    def __repr__(self) -> str:
        src = f" from {self.node.op}" if self.node is not None else ""
        return f"Value({self.name or '?'}: {self.type}{src})"


class Node:
    """One operation. `op` names an op record (see graphc.ops), ``const`` or ``fused``."""

    __slots__ = ("op", "inputs", "attrs", "outputs", "body", "data", "loc", "_hash")

    def __init__(
        self,
        op: str,
        inputs: Sequence[Value],
        attrs: dict[str, Any],
        output_types: Sequence[TensorType],
        *,
        body: "Graph | None" = None,
        data: np.ndarray | None = None,
        loc: str | None = None,
        output_names: Sequence[str | None] | None = None,
    ):
        self.op = op
        self.inputs: list[Value] = list(inputs)
        self.attrs: dict[str, Any] = dict(attrs)
        names = list(output_names) if output_names is not None else [None] * len(output_types)
        self.outputs: list[Value] = [Value(t, n, self, i) for i, (t, n) in enumerate(zip(output_types, names))]
        self.body = body
        self.data = data
        self.loc = loc  # where it came from: ONNX node name, source line, ...
        self._hash: str | None = None

    def data_hash(self) -> str:
        """Content hash of a constant's data (cached: constant arrays are immutable by convention)."""
        if self._hash is None:
            self._hash = const_hash(self.data)
        return self._hash

    @property
    def output(self) -> Value:
        if len(self.outputs) != 1:
            raise IRError(f"node {self.describe()} has {len(self.outputs)} outputs, not one")
        return self.outputs[0]

    @property
    def kind(self) -> str | None:
        """The fused group kind for ``fused`` nodes."""
        return self.attrs.get("kind") if self.op == "fused" else None

    def describe(self) -> str:
        label = f"fused[{self.kind}]" if self.op == "fused" else self.op
        return f"'{label}'" + (f" ({self.loc})" if self.loc else "")

    def __repr__(self) -> str:
        return f"Node({self.describe()})"


def const_hash(array: np.ndarray) -> str:
    """Content hash of a constant: dtype, shape and bytes."""
    h = hashlib.sha256()
    h.update(str(array.dtype).encode())
    h.update(str(array.shape).encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()[:12]


class Graph:
    def __init__(
        self,
        name: str,
        inputs: Sequence[Value],
        nodes: Sequence[Node],
        outputs: Sequence[Value],
        output_names: Sequence[str] | None = None,
    ):
        self.name = name
        self.inputs: list[Value] = list(inputs)
        self.nodes: list[Node] = list(nodes)
        self.outputs: list[Value] = list(outputs)
        self.output_names: list[str] | None = list(output_names) if output_names is not None else None

    # -- queries ---------------------------------------------------------------------
    def const_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.op == "const"]

    def constants(self) -> dict[str, np.ndarray]:
        """Content hash -> array for every constant, nested bodies included (for the parser)."""
        pool: dict[str, np.ndarray] = {}
        for node in self.walk():
            if node.op == "const":
                pool[node.data_hash()] = node.data
        return pool

    def walk(self) -> Iterable[Node]:
        """All nodes, descending into fused bodies."""
        for node in self.nodes:
            yield node
            if node.body is not None:
                yield from node.body.walk()

    def users(self) -> dict[Value, list[Node]]:
        uses: dict[Value, list[Node]] = {}
        for node in self.nodes:
            for v in node.inputs:
                uses.setdefault(v, []).append(node)
        return uses

    def compute_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.op != "const"]

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for n in self.compute_nodes():
            label = f"fused[{n.kind}]" if n.op == "fused" else n.op
            counts[label] = counts.get(label, 0) + 1
        return counts

    def output_name(self, i: int) -> str:
        if self.output_names is not None:
            return self.output_names[i]
        return f"output{i}" if len(self.outputs) > 1 else "output"

    # -- whole-graph operations -------------------------------------------------------
    def __str__(self) -> str:
        from .printer import print_graph

        return print_graph(self)

    def __repr__(self) -> str:
        return f"Graph(@{self.name}: {len(self.inputs)} inputs, {len(self.nodes)} nodes, {len(self.outputs)} outputs)"

    def structurally_equal(self, other: "Graph") -> bool:
        return graph_equal(self, other)

    def clone(self) -> "Graph":
        """A copy with fresh Values and Nodes (constant arrays are shared: they are immutable by convention)."""
        vmap: dict[Value, Value] = {}
        new_inputs = []
        for v in self.inputs:
            nv = Value(v.type, v.name)
            vmap[v] = nv
            new_inputs.append(nv)
        new_nodes = []
        for node in self.nodes:
            nn_ = Node(
                node.op,
                [vmap[v] for v in node.inputs],
                node.attrs,
                [o.type for o in node.outputs],
                body=node.body.clone() if node.body is not None else None,
                data=node.data,
                loc=node.loc,
                output_names=[o.name for o in node.outputs],
            )
            nn_._hash = node._hash
            for o, no in zip(node.outputs, nn_.outputs):
                vmap[o] = no
            new_nodes.append(nn_)
        return Graph(self.name, new_inputs, new_nodes, [vmap[v] for v in self.outputs], self.output_names)


# ---------------------------------------------------------------------------------------
# Structural equality: the DAGs reachable from the outputs are isomorphic (value names,
# node order and locations do not matter; ops, attributes, types and constants do).
# ---------------------------------------------------------------------------------------
def _attrs_equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_attrs_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_attrs_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _nodes_match(na: Node, nb: Node) -> bool:
    """Node-local equality: op, attributes, output types, constant data, fused bodies."""
    if na.op != nb.op or len(na.inputs) != len(nb.inputs) or len(na.outputs) != len(nb.outputs):
        return False
    if any(x.type != y.type for x, y in zip(na.outputs, nb.outputs)) or not _attrs_equal(na.attrs, nb.attrs):
        return False
    if na.op == "const" and (
        na.data.dtype != nb.data.dtype or not np.array_equal(na.data, nb.data, equal_nan=na.data.dtype.kind == "f")
    ):
        return False
    if (na.body is None) != (nb.body is None):
        return False
    return na.body is None or graph_equal(na.body, nb.body)


def graph_equal(a: Graph, b: Graph) -> bool:
    if len(a.inputs) != len(b.inputs) or len(a.outputs) != len(b.outputs):
        return False
    if any(x.type != y.type for x, y in zip(a.inputs, b.inputs)):
        return False
    vmap: dict[Value, Value] = dict(zip(a.inputs, b.inputs))
    nmap: dict[Node, Node] = {}
    rmap: dict[Node, Node] = {}
    # an explicit work list, not recursion: real models are thousands of nodes deep
    work = list(zip(a.outputs, b.outputs))
    while work:
        va, vb = work.pop()
        if va in vmap:
            if vmap[va] is not vb:
                return False
            continue
        na, nb = va.node, vb.node
        if na is None or nb is None or va.index != vb.index:
            return False
        vmap[va] = vb
        if na in nmap or nb in rmap:  # sharing must be the same on both sides
            if nmap.get(na) is not nb or rmap.get(nb) is not na:
                return False
            continue
        if not _nodes_match(na, nb):
            return False
        nmap[na], rmap[nb] = nb, na
        work.extend(zip(na.inputs, nb.inputs))
    return True


# ---------------------------------------------------------------------------------------
# Building graphs
# ---------------------------------------------------------------------------------------
_CURRENT_BUILDER: contextvars.ContextVar["GraphBuilder | None"] = contextvars.ContextVar("graphc_builder", default=None)


def current_builder() -> "GraphBuilder":
    b = _CURRENT_BUILDER.get()
    if b is None:
        raise IRError("no graph is being built: call ops inside graphc.trace(...) or a `with GraphBuilder():` block")
    return b


class GraphBuilder:
    """Emits nodes in topological order, running each op's type inference.

    Used by the tracing frontend, the importers, rewrite rules and gradient rules.
    As a context manager it becomes the target of op calls (``graphc.ops.relu(x)``).
    """

    def __init__(self, name: str = "main"):
        self.name = name
        self.inputs: list[Value] = []
        self.nodes: list[Node] = []
        self._tokens: list[contextvars.Token] = []
        self._const_cache: dict[tuple, Value] = {}

    def __enter__(self) -> "GraphBuilder":
        self._tokens.append(_CURRENT_BUILDER.set(self))
        return self

    def __exit__(self, *exc) -> None:
        _CURRENT_BUILDER.reset(self._tokens.pop())

    def input(self, name: str, type: TensorType) -> Value:
        v = Value(type, name)
        self.inputs.append(v)
        return v

    def const(self, array, name: str | None = None, dtype: str | None = None, *, share: bool = True) -> Value:
        """A constant node. Small unnamed constants (scalars from `x * 2`) are shared unless share=False."""
        arr = np.asarray(array, dtype=dtypes.to_numpy(dtype) if dtype else None)
        if arr.dtype == np.float64 and dtype is None and not isinstance(array, np.ndarray):
            arr = arr.astype(np.float32)  # Python floats default to f32, as in every DL framework
        dtypes.from_numpy(arr.dtype)  # reject unsupported dtypes early
        key = None
        if share and name is None and arr.size <= 16:
            key = (arr.dtype.str, arr.shape, arr.tobytes())
            if key in self._const_cache:
                return self._const_cache[key]
        node = Node("const", [], {}, [TensorType.of(arr)], data=arr, output_names=[name])
        self.nodes.append(node)
        if key is not None:
            self._const_cache[key] = node.outputs[0]
        return node.outputs[0]

    def emit(
        self,
        op: str,
        inputs: Sequence[Value],
        attrs: dict[str, Any] | None = None,
        *,
        body: Graph | None = None,
        loc: str | None = None,
        output_types: Sequence[TensorType] | None = None,
    ) -> list[Value]:
        """Add a node; its output types come from the op's inference (or the fused body)."""
        from .ops.registry import infer_node_types, normalize_attrs

        attrs = normalize_attrs(op, dict(attrs or {}))
        inputs = list(inputs)
        for v in inputs:
            if not isinstance(v, Value):
                raise IRError(f"op {op!r} got a {type(v).__name__} as input, expected a graph value")
        if output_types is None:
            output_types = infer_node_types(op, [v.type for v in inputs], attrs, body=body, loc=loc)
        node = Node(op, inputs, attrs, output_types, body=body, loc=loc)
        self.nodes.append(node)
        return node.outputs

    def add_node(self, node: Node) -> Node:
        """Append an already-built node (used when copying graphs)."""
        self.nodes.append(node)
        return node

    def build(self, outputs: Sequence[Value], output_names: Sequence[str] | None = None, *, prune_dead: bool = True) -> Graph:
        g = Graph(self.name, self.inputs, self.nodes, outputs, output_names)
        return prune(g) if prune_dead else g


def prune(graph: Graph) -> Graph:
    """Drop nodes whose outputs nothing uses (dead-code elimination at build time)."""
    live: set[Node] = set()
    stack = [v.node for v in graph.outputs if v.node is not None]
    while stack:
        n = stack.pop()
        if n in live:
            continue
        live.add(n)
        stack.extend(v.node for v in n.inputs if v.node is not None and v.node not in live)
    graph.nodes = [n for n in graph.nodes if n in live]
    return graph


def check_infer(cond: bool, msg: str) -> None:
    """Used by op records' inference functions to reject bad inputs."""
    if not cond:
        raise TypeInferenceError(msg)
