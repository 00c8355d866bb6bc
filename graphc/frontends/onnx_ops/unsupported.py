"""ONNX ops graphc does not convert on purpose: the reason the unsupported-op error gives for each."""
from __future__ import annotations

from ..onnx import UNSUPPORTED_REASONS

_REASONS = {
    "graphc has no string dtype": (
        "StringNormalizer", "StringSplit", "StringConcat", "RegexFullMatch", ("ai.onnx.ml", "CategoryMapper"),
    ),
    "graphc has no random number generation (stateless compiled graphs; the ONNX tests' expected values come from numpy's global generator)": (
        "Bernoulli", "RandomUniform", "RandomUniformLike", "RandomNormal", "RandomNormalLike", "Multinomial",
    ),
    "decoding encoded image bytes is not a tensor computation graphc compiles": ("ImageDecoder",),
    "graphc tensors have no map type": (("ai.onnx.ml", "ZipMap"), ("ai.onnx.ml", "DictVectorizer")),
}

for _reason, _ops in _REASONS.items():
    for _op in _ops:
        UNSUPPORTED_REASONS[_op if isinstance(_op, tuple) else ("", _op)] = _reason
