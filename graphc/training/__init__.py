"""graphc.training: compile training steps (forward + loss + backward + optimizer update).

    sess = graphc.compile_train(model, loss="cross_entropy", optimizer="adamw:lr=1e-3",
                                example_inputs=(x,))
    loss = sess.step(x, y)          # parameters and optimizer state stay on the device
    logits, = sess.eval(x)          # the model with the current weights
    sess.save_checkpoint("ckpt.gtc"); sess.state_dict(); sess.load_state_dict(...)

Names load lazily (the command line imports graphc.training.cli on every start).
"""
from __future__ import annotations

import importlib

_LAZY = {
    "TrainStep": "compile", "compile_train": "compile", "compile_train_step": "compile",
    "TrainGraphs": "graph", "build_train_graph": "graph", "trainable_names": "graph",
    "LOSSES": "losses", "MSE": "losses", "CrossEntropy": "losses", "Loss": "losses", "LossFn": "losses",
    "TrainError": "losses", "parse_loss": "losses",
    "OPTIMIZERS": "optimizers", "SGD": "optimizers", "Adam": "optimizers", "AdamW": "optimizers", "parse_optimizer": "optimizers",
    "Dataset": "data",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'graphc.training' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
