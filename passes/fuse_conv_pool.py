"""conv2d -> [bias add] -> [activation] -> max/avg pool as one fused kernel.

Codegen computes, for each pooled row, just the conv rows it reads into a small
scratch buffer and pools from there, so the full-resolution activation never
reaches memory (graphc.codegen.schedule.cpu: _schedule_conv_pool).

With overlapping windows (kernel > stride, e.g. ResNet's 3x3/2 max pool) the conv
rows shared by neighbouring pooled rows are computed twice; the rule fuses only
when the traffic saved outweighs the recomputed work, and says why not otherwise.

In training the pool is max_pool2d_with_index (passes/index_max_pool.py): the same kernel
has two outputs, the pooled value and each window's max tap, which is all the backward
needs; ``fuse_pool_relu_grad`` makes that backward (relu's mask at pooled resolution,
then routing by the taps to full resolution) one kernel too.
"""
from __future__ import annotations

from graphc.ir import Graph, GraphBuilder
from graphc.pattern import alt, const, op, var

from .fusion import make_fused
from .rewrite import map_nodes
from .rules import RewriteEvent, RewriteReport, Rule, RuleContext, apply_rules

ACTIVATIONS = ("relu", "gelu", "silu", "sigmoid", "tanh")

# Rough throughput of this class of machine (2 AVX-512 cores), used only to decide
# whether recomputing conv rows pays for the memory traffic a fused pool saves.
CONV_FLOPS_PER_S = 100e9
MEMORY_BYTES_PER_S = 20e9

_CONV = op("conv2d", var("x"), var("w"), name="conv")
_BIASED = alt(op("add", _CONV, var("bias"), name="bias_add"), _CONV)
_ACT = alt(op(ACTIVATIONS, _BIASED, name="act"), _BIASED)
PATTERN = op(("max_pool2d", "avg_pool2d"), _ACT, name="pool")
# two outputs: the rule driver matches single-output roots only, `_fuse_indexed_pools` walks these
INDEXED_PATTERN = op("max_pool2d_with_index", _ACT, name="pool")


def _per_channel(bias, conv_out) -> bool:
    dims = [1] * (4 - bias.type.rank) + list(bias.shape)
    return dims[0] == 1 and dims[2] == 1 and dims[3] == 1 and dims[1] in (1, conv_out.shape[1])


def conv_flops(conv) -> int:
    n, o, oh, ow = conv.outputs[0].shape
    _, cg, kh, kw = conv.inputs[1].shape
    return 2 * n * o * oh * ow * cg * kh * kw


def _check(m, ctx):
    conv, pool = m.node("conv"), m.node("pool")
    out = conv.outputs[0]
    if conv.attrs["groups"] != 1:
        return f"grouped conv (groups={conv.attrs['groups']}): no register-blocked kernel to fuse the pool into"
    if out.shape[1] % 4:
        return f"{out.shape[1]} output channels (not a multiple of 4): no register-blocked kernel to fuse the pool into"
    bias = m.get("bias")
    if bias is not None and not _per_channel(bias, out):
        return f"the added {bias.type} is not a per-channel bias"
    if tuple(pool.attrs.get("dilation", (1, 1))) != (1, 1):
        return "dilated pooling"
    (kh, kw), stride = pool.attrs["kernel"], pool.attrs["stride"] or pool.attrs["kernel"]
    if kh > stride[0]:
        recompute = conv_flops(conv) * (kh / stride[0] - 1.0)
        saved_bytes = 2 * out.type.numel * out.type.np_dtype.itemsize
        extra_s, saved_s = recompute / CONV_FLOPS_PER_S, saved_bytes / MEMORY_BYTES_PER_S
        if extra_s >= saved_s:
            return (
                f"overlapping {kh}x{kw}/{stride[0]} pool windows: fusing recomputes {kh / stride[0] - 1:.0%} of the "
                f"conv rows ({recompute / 1e6:.0f} MFLOP, ~{extra_s * 1e3:.2f} ms) to save "
                f"{saved_bytes / 1e6:.1f} MB of traffic (~{saved_s * 1e3:.2f} ms): does not pay"
            )
    return ctx.only_feeds(m, keep=pool.outputs)


def _rewrite(b, m):
    if _pool_first(m):
        return _max_pool_first(b, m)
    return make_fused(b, "conv_bias_relu_pool", m.nodes, [m.root])[0]


def _pool_first(m) -> bool:
    """Whether the group can pool before its epilogue: a max pool commutes with adding a
    per-channel bias and with ReLU (both monotone, the same for every tap of a window), so
    ``max_pool(relu(conv + b)) == relu(max_pool(conv) + b)``, computed on 1/4 of the elements
    for a 2x2 pool (seed CNN conv1: 4 adds and 4 ReLUs per pooled vector become 1 and 1)."""
    act = m.named_nodes.get("act")
    return m.node("pool").op == "max_pool2d" and m.get("bias") is not None and (act is None or act.op == "relu")


def _max_pool_first(b, m):
    """One fused node computing relu(max_pool(conv(x, w)) + bias) (see `_pool_first`)."""
    conv, pool, add, act = m.node("conv"), m.node("pool"), m.node("bias_add"), m.named_nodes.get("act")
    args = [m["x"], m["w"], m["bias"]]  # the match's bound values, already in the new graph
    body = GraphBuilder("conv_bias_relu_pool")
    x, w, bias = (body.input(f"in{i}", v.type) for i, v in enumerate(args))
    with body:
        y = body.emit("max_pool2d", body.emit("conv2d", [x, w], conv.attrs, loc=conv.loc), pool.attrs, loc=pool.loc)
        y = body.emit("add", [y[0], bias] if add.inputs[0] is conv.outputs[0] else [bias, y[0]], add.attrs, loc=add.loc)
        if act is not None:
            y = body.emit("relu", y, act.attrs, loc=act.loc)
    body_graph = body.build(y)
    return b.emit("fused", args, {"kind": "conv_bias_relu_pool"}, body=body_graph, loc=pool.loc)[0]


def _fuse_indexed_pools(graph: Graph, report: RewriteReport) -> Graph:
    """The fuse_conv_pool rule for max_pool2d_with_index roots: one kernel, both outputs."""
    ctx = RuleContext(graph, graph.users())

    def visit(b, node, ins):
        m = INDEXED_PATTERN.match(node.outputs[0]) if node.op == "max_pool2d_with_index" else None
        if m is None:
            return None
        reason = _check(m, ctx)
        event = RewriteEvent("fuse_conv_pool", node.describe(), node.loc, reason or "", tuple(n.loc or n.describe() for n in m.nodes))
        if reason:
            report.declined.append(event)
            return None
        report.applied.append(event)
        return make_fused(b, "conv_bias_relu_pool", m.nodes, list(node.outputs))

    return map_nodes(graph, visit)


# backward: route(where(pooled > 0, g, 0), taps) as one kernel (an elementwise prologue of the
# routing anchor, which the generic grouping never fuses into an anchor's input)
_ZERO = const(scalar=True, pred=lambda a: float(a.reshape(-1)[0]) == 0.0)
_MASKED = op("where", op("greater", var("pooled"), _ZERO, name="keep"), var("g"), _ZERO, name="mask")
GRAD_PATTERN = op("max_pool2d_index_grad", _MASKED, var("index"), name="route")


def _check_grad(m, ctx):
    pool = m["index"].node
    if pool is None or pool.op != "max_pool2d_with_index" or m["pooled"] is not pool.outputs[0]:
        return "the mask is not the routing pool's pooled value > 0"
    return None


def _rewrite_grad(b, m):
    # the mask stays where it is for its other readers (the bias gradient's sum): recomputing it
    # here reads pooled-size g and pooled instead of writing and re-reading the masked gradient
    return make_fused(b, "max_pool_relu_grad", m.nodes, [m.root])[0]


RULES = [Rule("fuse_conv_pool", PATTERN, _rewrite, _check), Rule("fuse_pool_relu_grad", GRAD_PATTERN, _rewrite_grad, _check_grad)]


def fuse_conv_pool(graph: Graph, report: RewriteReport | None = None) -> Graph:
    report = report if report is not None else RewriteReport()
    return _fuse_indexed_pools(apply_rules(graph, RULES, report), report)
