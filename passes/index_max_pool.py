"""Training: max pools whose backward reads only pooled-size tensors.

Autodiff turns y = max_pool2d(relu(z)) into

    dz = where(greater(z, 0), max_pool2d_grad(g, relu(z)), 0)

which keeps z and relu(z) alive at full resolution from the forward to the backward,
so the forward cannot be the one conv -> bias -> relu -> pool kernel that inference gets
(fuse_conv_pool declines when the activation escapes the group). Here the forward records
where each window's max is instead (max_pool2d_with_index), and the backward routes g by it:

1. ``index_max_pool``: max_pool2d(x) whose input a max_pool2d_grad(., x) with the same window
   also reads -> the value of max_pool2d_with_index(x);
2. ``index_max_pool_grad``: max_pool2d_grad(g, x) -> max_pool2d_index_grad(g, index of x's pool);
3. ``pool_relu_mask``: where(greater(z, 0), max_pool2d_index_grad(g, i), 0), i pooling relu(z)
   -> max_pool2d_index_grad(where(greater(y, 0), g, 0), i). Relu and max commute: the tap
   routed to holds y, so z > 0 there exactly when y > 0; a window whose max is <= 0 routes
   nothing (its first max is a zero of relu(z), where torch's relu mask is 0 too);
4. ``pooled_bias_grad``: a sum over N, H, W (the bias gradient) of max_pool2d_index_grad(gm, i)
   -> the same sum of gm: routing moves each window's value to one input position, so every
   per-channel total is unchanged, and it is read at pooled resolution (4x less for 2x2 pools).

fuse_conv_pool then fuses conv -> bias -> relu -> max_pool2d_with_index into one kernel with two
outputs (pooled value, i32 index) and the mask with the routing into one backward kernel.
Only graphs with a max_pool2d_grad are touched (inference graphs pass through unchanged).
Average pools need no index, but their backward still needs relu's full-resolution mask
(relu and average do not commute), and other activations (gelu, silu...) need z itself:
those stay as autodiff builds them.
"""
from __future__ import annotations

import numpy as np

from graphc.ir import Graph, Value
from graphc.pattern import const, op, var

from .rules import RewriteReport, Rule, RuleContext, apply_rules

_WINDOW_ATTRS = ("kernel", "stride", "pad", "dilation", "ceil_mode")
_ZERO = const(scalar=True, pred=lambda a: float(np.asarray(a).reshape(-1)[0]) == 0.0)


def _window(node) -> dict:
    return {k: node.attrs[k] for k in _WINDOW_ATTRS}


def _same_window_user(ctx: RuleContext, x: Value, op_name: str, like, position: int):
    """A node `op_name` reading x as input `position` with the window of node `like`, or None."""
    for u in ctx.users.get(x, ()):
        if u.op == op_name and len(u.inputs) > position and u.inputs[position] is x and _window(u) == _window(like):
            return u
    return None


# 1. the forward pool records its taps ---------------------------------------------------
_POOL = op("max_pool2d", var("x"), name="pool")


def _check_pool(m, ctx):
    if _same_window_user(ctx, m["x"], "max_pool2d_grad", m.node("pool"), 1) is None:
        return "no max_pool2d_grad of the same window reads this pool's input"
    return None


def _rewrite_pool(b, m):
    pool = m.node("pool")
    return b.emit("max_pool2d_with_index", [m["x"]], pool.attrs, loc=pool.loc)[0]


# 2. its backward routes by them -----------------------------------------------------------
_GRAD = op("max_pool2d_grad", var("g"), var("x"), name="grad")


def _check_grad(m, ctx):
    grad = m.node("grad")
    # the forward pool: already indexed, or rule 1 indexes it earlier in this same sweep
    pool = _same_window_user(ctx, m["x"], "max_pool2d_with_index", grad, 0) or _same_window_user(ctx, m["x"], "max_pool2d", grad, 0)
    if pool is None:
        return "no max_pool2d of the same window reads this gradient's input"
    m.info["pool"] = pool
    return None


def _rewrite_grad(b, m):
    index = b.new(m.info["pool"].outputs[0]).node.outputs[1]
    grad = m.node("grad")
    return b.emit("max_pool2d_index_grad", [m["g"], index], {**grad.attrs, "input_shape": grad.outputs[0].shape}, loc=grad.loc)[0]


# 3. relu's mask moves to pooled resolution ------------------------------------------------
_MASKED = op(
    "where",
    op("greater", var("z"), _ZERO),
    op("max_pool2d_index_grad", var("g"), var("index"), name="route"),
    _ZERO,
    name="mask",
)


def _check_mask(m, ctx):
    pool = m["index"].node
    if pool is None or pool.op != "max_pool2d_with_index" or m["index"] is not pool.outputs[1]:
        return "the routing index is not a max_pool2d_with_index's"
    act = pool.inputs[0].node
    if act is None or act.op != "relu" or act.inputs[0] is not m["z"]:
        return "the pool does not read relu of the masked value"
    return None


def _rewrite_mask(b, m):
    pooled = m["index"].node.outputs[0]
    zero = b.const(np.zeros((), pooled.type.np_dtype))
    g_zero = b.const(np.zeros((), m["g"].type.np_dtype))
    keep = b.emit("greater", [pooled, zero])[0]
    masked = b.emit("where", [keep, m["g"], g_zero])[0]
    route = m.node("route")
    return b.emit("max_pool2d_index_grad", [masked, m["index"]], route.attrs, loc=m.node("mask").loc)[0]


# 4. the bias gradient sums the pooled gradient ------------------------------------------
_SUM = op("sum", op("max_pool2d_index_grad", var("gm"), var("index"), name="route"), name="sum")


def _check_sum(m, ctx):
    axes = m.node("sum").attrs["axes"]
    if axes is not None and not {2, 3} <= {a % 4 for a in axes}:
        return "the sum keeps a spatial axis"
    route = m.node("route")
    if not (_masked_by_own_pool(m["gm"], m["index"]) or _windows_inside(route)):
        return "some window's tap may lie in the padding (its gradient would be dropped, not summed)"
    return None


def _masked_by_own_pool(gm: Value, index: Value) -> bool:
    """gm = where(greater(y, 0), ., 0) with y the pooled value of index's pool: every routed tap
    holds y > 0, a real input position (padding is -inf)."""
    m = op("where", op("greater", var("y"), _ZERO), var(), _ZERO).match(gm)
    return m is not None and index.node is not None and m["y"] is index.node.outputs[0]


def _windows_inside(route) -> bool:
    from graphc.ops.window import pool_window

    ah, aw = pool_window(route.attrs["input_shape"], **_window(route))
    return all(ax.lo == ax.hi == 0 and ax.padded == ax.size for ax in (ah, aw))


def _rewrite_sum(b, m):
    s = m.node("sum")
    return b.emit("sum", [m["gm"]], s.attrs, loc=s.loc)[0]


RULES = [
    Rule("index_max_pool", _POOL, _rewrite_pool, _check_pool),
    Rule("index_max_pool_grad", _GRAD, _rewrite_grad, _check_grad),
    Rule("pool_relu_mask", _MASKED, _rewrite_mask, _check_mask),
    Rule("pooled_bias_grad", _SUM, _rewrite_sum, _check_sum),
]


def index_max_pool(graph: Graph, report: RewriteReport | None = None) -> Graph:
    if not any(n.op in ("max_pool2d_grad", "max_pool2d_index_grad") for n in graph.nodes):
        return graph  # nothing differentiates a max pool here (inference)
    return apply_rules(graph, RULES, report)
