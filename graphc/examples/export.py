"""torch.onnx.export with the torch.export-based exporter, quietly (shared by the examples)."""
from __future__ import annotations

import logging
import warnings


def torch_onnx_export(module, path: str, *, args=(), kwargs=None, input_names=None, output_names=None) -> str:
    import torch

    # the exporter logs about optional torchvision ops, failed constant-folding attempts and pytree deprecations
    for logger in ("torch.onnx", "onnxscript"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(
            module, tuple(args), path, kwargs=kwargs, input_names=input_names, output_names=output_names, dynamo=True, verbose=False
        )
    return path
