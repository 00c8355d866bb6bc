"""Codegen decisions that passes need to know about (importable without TVM)."""
from __future__ import annotations

# A constant with at most this many elements is baked into the kernels that read it
# (an immediate the vectorizer can broadcast) rather than passed as an argument;
# fusion keeps such constants inside fused bodies.
INLINE_CONST_MAX = 1


def is_inline_const(array) -> bool:
    """Whether a constant is baked into kernels (one element; empty arrays have none to bake)."""
    return 0 < array.size <= INLINE_CONST_MAX
