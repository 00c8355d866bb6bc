"""Reverse-mode automatic differentiation over graphc IR.

``grad(graph, wrt, of=0)`` returns a graph with the same inputs that computes the
original outputs and then d(output `of`)/d(input) for every input named in `wrt`.
It is built from each op record's gradient rule (written in graphc ops), so the
backward half is ordinary IR: the same passes fuse it and the same codegen
compiles it.

How:

1. Fused groups are inlined (their bodies become ordinary nodes): the backward of a
   fused group is the backward of its body, and the intermediates it needs must
   reach memory anyway; the pass pipeline run afterwards fuses forward and backward
   kernels again.
2. Activity: a value needs a gradient when it is a float value computed by
   differentiable ops from a `wrt` input. Constants, integer and bool values, the
   outputs of non-differentiable ops (comparisons, argmax, floor...) and of
   ``stop_gradient`` are constants for differentiation.
3. The forward is copied, then nodes are visited in reverse order; each node with a
   cotangent on an output calls its op's rule, and the input cotangents are summed
   over every use (fan-out). Rules reduce broadcast gradients to their input's shape
   themselves (graphc.ops._grad.unbroadcast); the pass checks every result's type.
"""
from __future__ import annotations

from typing import Sequence

from graphc import dtypes
from graphc.errors import GraphcError
from graphc.ir import Graph, GraphBuilder, Value
from graphc.ops._grad import scalar, zeros_like
from graphc.ops.registry import get_op
from graphc.tensor import Tensor

from .rewrite import RewriteBuilder, copy_node, map_nodes


class AutodiffError(GraphcError):
    """A graph cannot be differentiated as asked (names the input, output or node)."""


# ---------------------------------------------------------------------------------------
# graph plumbing
# ---------------------------------------------------------------------------------------
def emit_graph(b: GraphBuilder, graph: Graph, inputs: Sequence[Value]) -> list[Value]:
    """Copy `graph`'s nodes into the graph `b` is building, its inputs bound to `inputs`;
    fused nodes are inlined (recursively). Returns the values of its outputs."""
    env: dict[Value, Value] = dict(zip(graph.inputs, inputs))
    for node in graph.nodes:
        ins = [env[v] for v in node.inputs]
        outs = emit_graph(b, node.body, ins) if node.op == "fused" else copy_node(b, node, ins)
        env.update(zip(node.outputs, outs))
    return [env[v] for v in graph.outputs]


def inline_fused(graph: Graph) -> Graph:
    """The same computation with every fused group replaced by its body's nodes."""
    return map_nodes(graph, lambda b, node, ins: emit_graph(b, node.body, ins) if node.op == "fused" else None)


def _input(graph: Graph, key: "int | str") -> Value:
    if isinstance(key, int):
        if not 0 <= key < len(graph.inputs):
            raise AutodiffError(f"graph @{graph.name} has {len(graph.inputs)} inputs; there is no input {key}")
        return graph.inputs[key]
    for v in graph.inputs:
        if v.name == key:
            return v
    raise AutodiffError(f"graph @{graph.name} has no input named {key!r}; its inputs are: {', '.join(str(v.name) for v in graph.inputs)}")


def _output(graph: Graph, key: "int | str") -> Value:
    names = [graph.output_name(i) for i in range(len(graph.outputs))]
    if isinstance(key, str):
        if key not in names:
            raise AutodiffError(f"graph @{graph.name} has no output named {key!r}; its outputs are: {', '.join(names)}")
        key = names.index(key)
    if not 0 <= key < len(graph.outputs):
        raise AutodiffError(f"graph @{graph.name} has {len(graph.outputs)} outputs; there is no output {key}")
    return graph.outputs[key]


# ---------------------------------------------------------------------------------------
# activity analysis
# ---------------------------------------------------------------------------------------
def _is_float(v: Value) -> bool:
    return dtypes.is_float(v.dtype)


def _differentiable(op: str) -> bool:
    return op not in ("const", "fused") and get_op(op).differentiable


def active_values(graph: Graph, wrt: Sequence[Value]) -> set[Value]:
    """Float values that depend on `wrt` through differentiable ops (graph without fused nodes)."""
    active = {v for v in wrt if _is_float(v)}
    for node in graph.nodes:
        if _differentiable(node.op) and any(v in active for v in node.inputs):
            active.update(o for o in node.outputs if _is_float(o))
    return active


def differentiable_inputs(graph: Graph, of: "int | str" = 0) -> list[str]:
    """Names of the float inputs output `of` depends on through differentiable ops
    (the inputs whose gradient is not identically zero)."""
    flat = inline_fused(graph)
    target = _output(flat, of)
    reach: set[Value] = {target}
    for node in reversed(flat.nodes):
        if _differentiable(node.op) and any(o in reach for o in node.outputs):
            reach.update(v for v in node.inputs if _is_float(v))
    return [v.name for v in flat.inputs if v in reach and _is_float(v)]


# ---------------------------------------------------------------------------------------
# the backward pass
# ---------------------------------------------------------------------------------------
def backprop(b: RewriteBuilder, graph: Graph, seeds: dict[Value, Tensor], wrt: Sequence[Value]) -> list[Tensor]:
    """Emit into `b` the gradients of `wrt` (values of `graph`, which has no fused nodes and
    whose forward `b.vmap` already maps), given cotangents `seeds` for some of its values.
    Returns one gradient per `wrt` value (zeros where it has no influence)."""
    active = active_values(graph, wrt)
    cot: dict[Value, Tensor] = {}

    def accumulate(v: Value, g: Tensor) -> None:
        cot[v] = cot[v] + g if v in cot else g

    for v, g in seeds.items():
        if v in active:
            accumulate(v, g)
    with b:
        for node in reversed(graph.nodes):
            if not any(o in cot for o in node.outputs) or not _differentiable(node.op):
                continue
            record = get_op(node.op)
            ins = [Tensor(b.new(v)) for v in node.inputs]
            outs = [Tensor(b.new(o)) for o in node.outputs]
            if len(node.outputs) == 1:
                g, out = cot[node.outputs[0]], outs[0]
            else:  # an output without a cotangent contributes zeros (None when it is not a float)
                g = tuple(cot.get(o, zeros_like(t) if _is_float(o) else None) for o, t in zip(node.outputs, outs))
                out = tuple(outs)
            grads = record.grad(g, *ins, out=out, **node.attrs)
            if len(grads) != len(node.inputs):
                raise AutodiffError(f"gradient rule of {node.describe()} returned {len(grads)} entries for {len(node.inputs)} inputs")
            for i, (v, gi) in enumerate(zip(node.inputs, grads)):
                if v not in active or gi is None:
                    continue
                if not isinstance(gi, Tensor) or gi.type != v.type:
                    got = gi.type if isinstance(gi, Tensor) else type(gi).__name__
                    raise AutodiffError(f"gradient rule of {node.describe()} gave input {i} a gradient of type {got}, expected {v.type}")
                accumulate(v, gi)
        return [cot[v] if v in cot else zeros_like(Tensor(b.new(v))) for v in wrt]


def _strip_stop_gradient(graph: Graph) -> Graph:
    """stop_gradient has done its job once the gradient is built: it becomes its input."""
    return map_nodes(graph, lambda b, node, ins: ins if node.op == "stop_gradient" else None)


def grad(graph: Graph, wrt: Sequence["int | str"], of: "int | str" = 0) -> Graph:
    """A graph with `graph`'s inputs returning its outputs followed by the gradient of output
    `of` (a 0-d float: a loss) with respect to each input in `wrt` (names or positions)."""
    flat = inline_fused(graph)
    targets = [_input(flat, k) for k in wrt]
    for v in targets:
        if not _is_float(v):
            raise AutodiffError(f"cannot differentiate with respect to input {v.name!r}: it is {v.type}, not a float tensor")
    loss = _output(flat, of)
    if not _is_float(loss) or loss.shape != ():
        raise AutodiffError(f"the differentiated output {flat.output_name(flat.outputs.index(loss))!r} must be a 0-d float (a loss), got {loss.type}")
    b = RewriteBuilder(graph.name)
    for v in flat.inputs:
        b.vmap[v] = b.input(v.name, v.type)
    with b:
        for node in flat.nodes:
            b.vmap.update(zip(node.outputs, copy_node(b, node, [b.vmap[v] for v in node.inputs])))
        seed = scalar(1.0, loss.dtype)
    grads = backprop(b, flat, {loss: seed}, targets)
    names = [flat.output_name(i) for i in range(len(flat.outputs))] + [f"grad.{v.name}" for v in targets]
    out = b.build([b.new(v) for v in flat.outputs] + [g.value for g in grads], names)
    return _strip_stop_gradient(out)
