"""ai.onnx.ml ops on numeric tensors: Binarizer, ArrayFeatureExtractor, LabelEncoder, TreeEnsemble.

graphc has no string dtype, so string-keyed forms (LabelEncoder on strings) fail at the
string input. Tree ensembles are static: each tree becomes comparisons of feature
columns against its split constants, and-ed along every root-to-leaf path.
"""
from __future__ import annotations

import numpy as np

from ... import dtypes
from ...tensor import Tensor
from ..onnx import NodeContext, converter
from ._compose import stack, take

DOMAIN = "ai.onnx.ml"


def _any(ctx: NodeContext, mask: Tensor, axis: int) -> Tensor:
    """Whether any element along `axis` is true."""
    count = ctx.op("sum", ctx.op("cast", mask, dtype="i32"), axes=(axis,), keepdims=False)
    return ctx.op("greater", count, ctx.scalar(0, count))


@converter("Binarizer", domain=DOMAIN)
def _binarizer(ctx: NodeContext):
    x = ctx.input(0)
    above = ctx.op("greater", x, ctx.scalar(float(ctx.attr("threshold")), x))
    return ctx.op("where", above, ctx.scalar(1, x), ctx.scalar(0, x))


@converter("ArrayFeatureExtractor", domain=DOMAIN)
def _array_feature_extractor(ctx: NodeContext):
    """data[..., indices.ravel()]; a 1-D input gives a [1, n] output (as onnxruntime)."""
    x, idx = ctx.input(0), ctx.input(1)
    if idx.dtype != "i64":
        raise ctx.error(f"indices must be int64, got {idx.dtype}")
    if x.ndim == 0:
        raise ctx.error("X must have at least one dimension")
    flat = ctx.op("reshape", idx, shape=(idx.type.numel,))
    y = ctx.op("gather", x, flat, axis=x.ndim - 1)
    return ctx.op("reshape", y, shape=(1, idx.type.numel)) if x.ndim == 1 else y


# ---------------------------------------------------------------------------------------
# LabelEncoder
# ---------------------------------------------------------------------------------------
def _label_encoder_table(ctx: NodeContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keys, values, default) as numpy arrays; later duplicates of a key win (as a dict)."""
    keys = _first_attr(ctx, ("keys_floats", np.float32), ("keys_int64s", np.int64), ("keys_tensor", None))
    values = _first_attr(ctx, ("values_floats", np.float32), ("values_int64s", np.int64), ("values_tensor", None))
    if ctx.has_attr("keys_strings") or ctx.has_attr("values_strings"):
        raise ctx.error("string keys or values are not supported (graphc has no string dtype)")
    if keys is None or values is None:
        raise ctx.error("needs numeric keys (keys_floats, keys_int64s or keys_tensor) and values")
    if keys.size != values.size:
        raise ctx.error(f"{keys.size} keys but {values.size} values")
    if ctx.has_attr("default_tensor"):
        default = np.asarray(ctx.attr("default_tensor")).reshape(-1)[:1].astype(values.dtype)
    elif values.dtype == np.float32:
        default = np.array([ctx.attr("default_float", -0.0)], np.float32)
    else:
        default = np.array([ctx.attr("default_int64", -1)], np.int64)
    table = dict(zip(keys.reshape(-1).tolist(), values.reshape(-1).tolist()))
    return np.array(list(table), keys.dtype), np.array(list(table.values()), values.dtype), default.reshape(())


def _first_attr(ctx: NodeContext, *candidates) -> np.ndarray | None:
    for name, dtype in candidates:
        if ctx.has_attr(name):
            return np.asarray(ctx.attr(name), dtype=dtype).reshape(-1)
    return None


@converter("LabelEncoder", domain=DOMAIN)
def _label_encoder(ctx: NodeContext):
    """Each element compared with every key at once ([..., keys]); the one match selects its value."""
    x = ctx.input(0)
    keys, values, default = _label_encoder_table(ctx)
    if dtypes.from_numpy(keys.dtype) != x.dtype:
        raise ctx.error(f"keys are {dtypes.from_numpy(keys.dtype)} but the input is {x.dtype}")
    if keys.size == 0:
        return ctx.op("broadcast_to", ctx.constant(default), shape=x.shape)
    hits = ctx.op("equal", ctx.op("unsqueeze", x, axes=(x.ndim,)), ctx.constant(keys))
    if keys.dtype.kind == "f" and np.isnan(keys).any():  # a NaN key matches NaN inputs (as onnxruntime)
        nan_key = ctx.constant(np.isnan(keys))
        x_nan = ctx.op("not_equal", ctx.op("unsqueeze", x, axes=(x.ndim,)), ctx.op("unsqueeze", x, axes=(x.ndim,)))
        hits = ctx.op("logical_or", hits, ctx.op("logical_and", x_nan, nan_key))
    zero = ctx.constant(np.zeros((), values.dtype))
    value = ctx.op("sum", ctx.op("where", hits, ctx.constant(values), zero), axes=(x.ndim,), keepdims=False)
    return ctx.op("where", _any(ctx, hits, x.ndim), value, ctx.constant(default))


# ---------------------------------------------------------------------------------------
# TreeEnsemble (ai.onnx.ml opset 5)
# ---------------------------------------------------------------------------------------
_MEMBER = 6
# node mode -> comparison of the feature with the split (BRANCH_LEQ, _LT, _GTE, _GT, _EQ, _NEQ)
_COMPARISONS = ("less_equal", "less", "greater_equal", "greater", "equal", "not_equal")
_AGGREGATES = {0: "sum", 1: "sum", 2: "min", 3: "max"}  # 0 = AVERAGE: a sum of weights / n_trees


class _Trees:
    """The node arrays of a TreeEnsemble, and the per-node conditions on X's feature columns."""

    def __init__(self, ctx: NodeContext, x: Tensor):
        self.ctx, self.x = ctx, x

        def ints(name):
            return [int(v) for v in (ctx.attr(name, None) or [])]

        self.feature = ints("nodes_featureids")
        self.true_id, self.false_id = ints("nodes_truenodeids"), ints("nodes_falsenodeids")
        self.true_leaf, self.false_leaf = ints("nodes_trueleafs"), ints("nodes_falseleafs")
        self.missing_true = ints("nodes_missing_value_tracks_true") or [0] * len(self.feature)
        self.modes = [int(m) for m in np.asarray(ctx.attr("nodes_modes")).reshape(-1)]
        self.splits = np.asarray(ctx.attr("nodes_splits")).reshape(-1)
        n = len(self.feature)
        lengths = [len(self.true_id), len(self.false_id), len(self.true_leaf), len(self.false_leaf), len(self.modes), len(self.splits), len(self.missing_true)]
        if any(k != n for k in lengths):
            raise ctx.error(f"the nodes_* attributes differ in length ({[n, *lengths]})")
        if any(not 0 <= f < x.shape[1] for f in self.feature):
            raise ctx.error(f"nodes_featureids {self.feature} index past X's {x.shape[1]} features")
        self.members = self._membership_sets()
        self.columns: dict[int, Tensor] = {}

    def _membership_sets(self) -> dict[int, np.ndarray]:
        """BRANCH_MEMBER node -> its set (membership_values: the sets in node order, each ended by NaN)."""
        values = self.ctx.attr("membership_values", None)
        values = np.asarray(values).reshape(-1) if values is not None else np.zeros(0)
        bounds = np.flatnonzero(np.isnan(values))
        member_nodes = [k for k, m in enumerate(self.modes) if m == _MEMBER]
        if len(bounds) != len(member_nodes):
            raise self.ctx.error(f"{len(member_nodes)} BRANCH_MEMBER nodes but {len(bounds)} NaN-ended sets in membership_values")
        starts = [0, *(bounds[:-1] + 1)]
        return {k: values[s:e] for k, s, e in zip(member_nodes, starts, bounds)}

    def column(self, f: int) -> Tensor:
        if f not in self.columns:
            self.columns[f] = take(self.ctx, self.x, 1, f)
        return self.columns[f]

    def condition(self, k: int) -> Tensor:
        """[N] bool: whether node k takes its true branch."""
        ctx, col, mode = self.ctx, self.column(self.feature[k]), self.modes[k]
        if mode < len(_COMPARISONS):
            cond = ctx.op(_COMPARISONS[mode], col, ctx.scalar(self.splits[k], col))
        elif mode == _MEMBER:
            members = ctx.constant(self.members[k].astype(dtypes.to_numpy(col.dtype)))
            cond = _any(ctx, ctx.op("equal", ctx.op("unsqueeze", col, axes=(1,)), members), 1)
        else:
            raise ctx.error(f"unknown node mode {mode} at node {k}")
        if self.missing_true[k]:  # a missing (NaN) feature takes the true branch
            cond = ctx.op("logical_or", cond, ctx.op("isnan", col))
        return cond

    def leaves_reached(self, root: int) -> list[tuple[int, Tensor | None]]:
        """(leaf index, [N] bool reaching it; None: always) for every leaf of the tree at `root`."""
        ctx = self.ctx
        if self.true_leaf[root] and self.false_leaf[root] and self.true_id[root] == self.false_id[root]:
            return [(self.true_id[root], None)]  # a tree that is a single leaf
        out = []
        pending = [(root, None, 0)]
        while pending:
            k, reach, depth = pending.pop()
            if depth > len(self.feature):
                raise ctx.error(f"the tree at root {root} has a cycle")
            cond = self.condition(k)
            for branch, to, is_leaf in ((cond, self.true_id[k], self.true_leaf[k]), (ctx.op("logical_not", cond), self.false_id[k], self.false_leaf[k])):
                path = branch if reach is None else ctx.op("logical_and", reach, branch)
                if is_leaf:
                    out.append((to, path))
                elif not 0 <= to < len(self.feature):
                    raise ctx.error(f"node {k} branches to node {to}, past the {len(self.feature)} nodes")
                else:
                    pending.append((to, path, depth + 1))
        return out


@converter("TreeEnsemble", domain=DOMAIN)
def _tree_ensemble(ctx: NodeContext):
    """Every (tree, leaf) pair reached is a mask [N, leaves]; a constant [leaves, targets] table places
    each leaf's weight on its target, and the aggregate reduces over the leaves."""
    x = ctx.input(0)
    if x.ndim != 2 or not dtypes.is_float(x.dtype):
        raise ctx.error(f"X must be a 2-D float tensor [N, features], got {x.dtype}{list(x.shape)}")
    trees = _Trees(ctx, x)
    weights = np.asarray(ctx.attr("leaf_weights")).reshape(-1).astype(dtypes.to_numpy(x.dtype))
    targets = [int(t) for t in ctx.attr("leaf_targetids")]
    n_targets = int(ctx.attr("n_targets"))
    aggregate = int(ctx.attr("aggregate_function", 1))
    if aggregate not in _AGGREGATES:
        raise ctx.error(f"unknown aggregate_function {aggregate}")
    if any(not 0 <= t < n_targets for t in targets) or len(targets) != weights.size:
        raise ctx.error(f"leaf_targetids {targets} must give one target in [0, {n_targets}) per leaf weight ({weights.size})")
    roots = [int(r) for r in ctx.attr("tree_roots")]
    reached = [pair for root in roots for pair in trees.leaves_reached(root)]
    always = ctx.constant(np.ones(x.shape[0], bool))
    mask = stack(ctx, [always if r is None else r for _, r in reached], 1)  # [N, leaves]
    # table[l, t]: whether leaf l feeds target t
    leaf_ids = [leaf for leaf, _ in reached]
    table = np.zeros((len(reached), n_targets), bool)
    table[np.arange(len(reached)), [targets[leaf] for leaf in leaf_ids]] = True
    leaf_weights = weights[leaf_ids] / (len(roots) if aggregate == 0 else 1)
    reduce = _AGGREGATES[aggregate]
    info = np.finfo(weights.dtype)
    neutral = {"sum": 0, "min": info.max, "max": info.min}[reduce]
    feeds = ctx.op("logical_and", ctx.op("unsqueeze", mask, axes=(2,)), ctx.constant(table))  # [N, leaves, targets]
    contrib = ctx.op("where", feeds, ctx.constant(leaf_weights.reshape(-1, 1)), ctx.scalar(neutral, x))
    y = ctx.op(reduce, contrib, axes=(1,), keepdims=False)
    if reduce != "sum":  # a target no reached leaf feeds scores 0 (as onnxruntime), not the neutral value
        y = ctx.op("where", _any(ctx, feeds, 1), y, ctx.scalar(0, y))
    return _post_transform(ctx, y, int(ctx.attr("post_transform", 0)))


def _post_transform(ctx: NodeContext, y: Tensor, kind: int) -> Tensor:
    """The spec's numbering: 0 NONE, 1 SOFTMAX, 2 LOGISTIC, 3 SOFTMAX_ZERO, 4 PROBIT (onnxruntime 1.2x
    swaps SOFTMAX and LOGISTIC for TreeEnsemble)."""
    if kind == 0:
        return y
    if kind == 1:
        return ctx.op("softmax", y, axis=-1)
    if kind == 2:
        return ctx.op("sigmoid", y)
    if kind == 3:  # softmax over the non-zero scores; zero scores stay 0 (onnxruntime's tolerance for "zero")
        nonzero = ctx.op("greater", ctx.op("abs", y), ctx.scalar(1e-7, y))
        shifted = ctx.op("sub", y, ctx.op("max", y, axes=(-1,), keepdims=True))
        e = ctx.op("where", nonzero, ctx.op("exp", shifted), ctx.scalar(0, y))
        return ctx.op("div", e, ctx.op("sum", e, axes=(-1,), keepdims=True))
    raise ctx.error(f"post_transform {'PROBIT' if kind == 4 else kind} is not supported (NONE, SOFTMAX, LOGISTIC and SOFTMAX_ZERO are)")
