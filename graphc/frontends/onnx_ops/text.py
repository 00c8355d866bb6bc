"""Text ONNX ops on integer token ids: TfIdfVectorizer.

graphc has no string dtype: the string ops (StringNormalizer, StringSplit, StringConcat,
RegexFullMatch, string-pool TfIdfVectorizer) cannot be imported.
"""
from __future__ import annotations

import numpy as np

from ... import dtypes
from ...tensor import Tensor
from ..onnx import NodeContext, converter

_MODES = ("TF", "IDF", "TFIDF")


def _pool_ngrams(ctx: NodeContext) -> list[tuple[int, tuple[int, ...]]]:
    """(global index, n-gram) for every n-gram of the pool, in pool order: ``ngram_counts[i]`` is
    where the (i+1)-grams start. The index counts all n-grams (as ngram_indexes does)."""
    if ctx.has_attr("pool_strings"):
        raise ctx.error("pool_strings: string n-grams are not supported (graphc has no string dtype)")
    pool = [int(v) for v in ctx.attr("pool_int64s", None) or []]
    starts = [int(v) for v in ctx.attr("ngram_counts")]
    grams = []
    for i, start in enumerate(starts):
        n = i + 1
        end = starts[i + 1] if i + 1 < len(starts) else len(pool)
        if end < start or (end - start) % n:
            raise ctx.error(f"ngram_counts {starts}: the {n}-grams span {end - start} pool entries, not a multiple of {n}")
        grams.extend(tuple(pool[k : k + n]) for k in range(start, end, n))
    return list(enumerate(grams))


def _occurrences(ctx: NodeContext, x: Tensor, grams: list[tuple[int, ...]], skips: list[int]) -> Tensor:
    """[B, len(grams)] float32: how often each n-gram (all of one length n) occurs in each row,
    summed over the skip distances (token j of an occurrence at s is x[s + j * distance])."""
    n, width = len(grams[0]), x.shape[1]
    table = np.array(grams, dtype=np.int64)  # [K, n]
    total = None
    for distance in skips:
        positions = width - (n - 1) * distance
        if positions <= 0:
            continue
        match = None
        for j in range(n):
            tokens = ctx.op("slice", x, starts=(j * distance,), ends=(j * distance + positions,), axes=(1,), steps=(1,))
            eq = ctx.op("equal", ctx.op("unsqueeze", tokens, axes=(2,)), ctx.constant(table[:, j].astype(dtypes.to_numpy(x.dtype))))
            match = eq if match is None else ctx.op("logical_and", match, eq)
        count = ctx.op("sum", ctx.op("cast", match, dtype="f32"), axes=(1,), keepdims=False)
        total = count if total is None else ctx.op("add", total, count)
    return total if total is not None else ctx.constant(np.zeros((x.shape[0], len(grams)), np.float32))


@converter("TfIdfVectorizer")
def _tfidf_vectorizer(ctx: NodeContext):
    """Counts of the pool's n-grams (lengths min..max, skips 0..max_skip; unigrams counted once),
    weighted per n-gram (TF: counts, IDF: its weight (or 1) where it occurs, TFIDF: weight * count;
    ``weights[k]`` belongs to the k-th pool n-gram, as the spec and onnxruntime have it) and placed
    at their ngram_indexes columns."""
    x = ctx.input(0)
    if x.dtype not in ("i32", "i64") or x.ndim not in (1, 2):
        raise ctx.error(f"X must be an int32/int64 tensor [C] or [N, C], got {x.dtype}{list(x.shape)}")
    mode = ctx.attr("mode")
    if mode not in _MODES:
        raise ctx.error(f"unknown mode {mode!r} ({', '.join(_MODES)})")
    lo, hi = int(ctx.attr("min_gram_length")), int(ctx.attr("max_gram_length"))
    max_skip = int(ctx.attr("max_skip_count"))
    indexes = [int(v) for v in ctx.attr("ngram_indexes")]
    grams = _pool_ngrams(ctx)
    if len(indexes) != len(grams):
        raise ctx.error(f"{len(indexes)} ngram_indexes for {len(grams)} pool n-grams")
    weights = np.asarray(ctx.attr("weights", None) or [], np.float32)
    if weights.size and weights.size != len(grams):
        raise ctx.error(f"{weights.size} weights for {len(grams)} pool n-grams")
    width = max(indexes) + 1 if indexes else 0
    rows = ctx.op("reshape", x, shape=(1, x.shape[0])) if x.ndim == 1 else x
    info = np.iinfo(dtypes.to_numpy(x.dtype))
    counts, used = [], []
    for n in range(lo, hi + 1):
        # n-grams with a token outside the input type's range never occur
        of_n = [(k, g) for k, g in grams if len(g) == n and all(info.min <= t <= info.max for t in g)]
        if not of_n:
            continue
        skips = [1] if n == 1 else list(range(1, max_skip + 2))
        counts.append(_occurrences(ctx, rows, [g for _, g in of_n], skips))
        used.extend(k for k, _ in of_n)
    if counts:
        per_gram = _weighted(ctx, counts[0] if len(counts) == 1 else ctx.op("concat", *counts, axis=1), mode, weights[used] if weights.size else None)
        placement = np.zeros((len(used), width), np.float32)
        placement[np.arange(len(used)), [indexes[k] for k in used]] = 1.0
        y = ctx.op("matmul", per_gram, ctx.constant(placement))  # [B, width]: each n-gram's value in its column
    else:
        y = ctx.constant(np.zeros((rows.shape[0], width), np.float32))
    return ctx.op("reshape", y, shape=(width,)) if x.ndim == 1 else y


def _weighted(ctx: NodeContext, counts: Tensor, mode: str, weights: np.ndarray | None) -> Tensor:
    """[B, grams] counts weighted by `mode` with the grams' weights (None: no weights attribute)."""
    if mode == "TF":
        return counts
    if mode == "TFIDF":
        return counts if weights is None else ctx.op("mul", counts, ctx.constant(weights))
    present = ctx.op("greater", counts, ctx.scalar(0, counts))
    if weights is None:
        return ctx.op("cast", present, dtype="f32")
    return ctx.op("where", present, ctx.constant(weights), ctx.scalar(0, counts))
