"""graphc.runtime: load and run compiled artifacts, and the reference interpreter.

Importable with only the TVM runtime installed (no TVM compiler, torch or onnx).
"""
from __future__ import annotations

from .artifact import ArtifactData, TensorSpec, read_artifact, write_artifact  # noqa: F401
from .interpreter import run_graph  # noqa: F401
from .session import Session, load  # noqa: F401
from .train import TrainSession, load_train  # noqa: F401
