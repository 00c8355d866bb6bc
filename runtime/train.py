"""Running compiled train steps: `TrainSession` keeps parameters and optimizer state on the device.

A train artifact's module has two functions: ``main``, the train step (forward,
loss, backward and optimizer update as one graph), and ``eval``, the model's
forward with the parameters as inputs. ``main`` takes

    (*data, *targets, *params, *state, lr, step, *constants)

and returns ``(loss, *new_params, *new_state)``; the session holds params and
state as device tensors and passes the ones a step returns to the next step, so a
step uploads only its batch (and two scalars) and downloads only the loss. Only
the TVM *runtime* is used here.

`TrainLayout` is that signature as plain data, stored in the artifact's manifest.
"""
from __future__ import annotations

import json
import os
import threading
import zipfile
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from graphc import __version__
from graphc.errors import ArtifactError, InputError
from graphc.targets import Target, check_loadable

from .artifact import ArtifactData, TensorSpec, read_artifact
from .session import _tvm_runtime, load_library, parse_device
from .signature import bind_inputs, check_array
from .threads import move_off_worker_cores

ARTIFACT_KIND = "train"
CHECKPOINT_FORMAT = "graphc-train-checkpoint"


@dataclass
class TrainLayout:
    """What the train step's inputs and outputs are, in order."""

    data: list[TensorSpec]  # the model's inputs
    targets: list[TensorSpec]  # the loss's targets
    params: list[TensorSpec]  # trainable parameters, named as in the model
    slots: list[str]  # optimizer state per parameter (e.g. exp_avg, exp_avg_sq), parameter-major
    eval_outputs: list[TensorSpec]  # the model's outputs (the eval function)
    optimizer: dict  # {"kind": "adamw", "lr": 0.001, ...}
    loss: dict  # {"kind": "cross_entropy", ...}
    n_main_consts: int = 0  # trailing constant arguments of main, then eval's, in the artifact's params
    n_eval_consts: int = 0

    def state_names(self) -> list[tuple[str, str]]:
        """(parameter, slot) of every optimizer state tensor, in input order."""
        return [(p.name, s) for p in self.params for s in self.slots]

    def to_json(self) -> dict:
        specs = lambda xs: [s.to_json() for s in xs]  # noqa: E731
        return {
            "data": specs(self.data), "targets": specs(self.targets), "params": specs(self.params), "slots": list(self.slots),
            "eval_outputs": specs(self.eval_outputs), "optimizer": self.optimizer, "loss": self.loss,
            "n_main_consts": self.n_main_consts, "n_eval_consts": self.n_eval_consts,
        }

    @staticmethod
    def from_json(d: dict) -> "TrainLayout":
        specs = lambda xs: [TensorSpec.from_json(s) for s in xs]  # noqa: E731
        return TrainLayout(
            specs(d["data"]), specs(d["targets"]), specs(d["params"]), list(d["slots"]), specs(d["eval_outputs"]),
            dict(d["optimizer"]), dict(d["loss"]), int(d["n_main_consts"]), int(d["n_eval_consts"]),
        )


def _as_list(value, names: Sequence[str]) -> tuple[list, dict]:
    """A batch given as one array, a sequence (in order) or a mapping (by name) -> (args, kwargs)."""
    if isinstance(value, Mapping):
        return [], dict(value)
    if isinstance(value, (list, tuple)):
        return list(value), {}
    return ([value] if len(names) else []), {}


class TrainSession:
    """A compiled train step with its parameters and optimizer state on the device.

    ``step(inputs, targets) -> loss`` runs one step (inputs/targets: an array, a
    sequence in order, or a dict by name); ``eval(*inputs)`` runs the model with the
    current parameters. The learning rate is ``lr`` (or ``lr_schedule(step)`` when
    set, or the ``lr=`` argument of a step). Calls are serialized with a lock.
    """

    def __init__(self, executable, layout: TrainLayout, main_consts: Sequence[np.ndarray], eval_consts: Sequence[np.ndarray],
                 params: Mapping[str, np.ndarray], target: Target, device: str = "cpu", meta: dict | None = None):
        tvm = _tvm_runtime()
        check_loadable(target)
        self.target = target
        self.layout = layout
        self.meta = meta or {}
        self.device = parse_device(device)
        vm = tvm.runtime.vm.VirtualMachine(executable, self.device)
        self._main, self._eval = vm["main"], vm["eval"]
        self._main_consts = [self._upload(c) for c in main_consts]
        self._eval_consts = [self._upload(c) for c in eval_consts]
        self.lr: float = float(layout.optimizer["lr"])
        self.lr_schedule: Callable[[int], float] | None = None
        self.step_count = 0
        self._lock = threading.Lock()
        self._params: list = []
        self._state: list = []
        self._set_params({p.name: params[p.name] for p in layout.params})
        self.reset_optimizer()
        self.compiled = None  # the compiler's TrainStep when made in this process (graphc.training)

    # -- device tensors ---------------------------------------------------------------------
    def _upload(self, array: np.ndarray):
        return _tvm_runtime().runtime.tensor(np.asarray(array, order="C"), self.device)

    def _set_params(self, params: Mapping[str, np.ndarray]) -> None:
        self._params = [self._upload(check_array(p.name, p.type, params[p.name])) for p in self.layout.params]

    def reset_optimizer(self) -> None:
        """Zero the optimizer state and the step count (PyTorch's state on a fresh optimizer)."""
        specs = {p.name: p for p in self.layout.params}
        self._state = [self._upload(np.zeros(specs[p].shape, specs[p].type.np_dtype)) for p, _ in self.layout.state_names()]
        self.step_count = 0

    # -- running -----------------------------------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        return [s.name for s in self.layout.data]

    @property
    def target_names(self) -> list[str]:
        return [s.name for s in self.layout.targets]

    def _bind(self, specs: Sequence[TensorSpec], value, what: str) -> list:
        names = [s.name for s in specs]
        args, kwargs = _as_list(value, names)
        arrays = bind_inputs(names, [s.type for s in specs], args, kwargs, what=what)
        return [self._upload(a) for a in arrays]

    def current_lr(self, lr: float | None = None) -> float:
        """The learning rate the next step uses."""
        if lr is not None:
            return float(lr)
        if self.lr_schedule is not None:
            return float(self.lr_schedule(self.step_count))
        return self.lr

    def step(self, inputs, targets=(), *, lr: float | None = None) -> float:
        """One training step on a batch; returns the loss (computed before the update)."""
        data = self._bind(self.layout.data, inputs, "train step inputs")
        tgts = self._bind(self.layout.targets, targets, "train step targets")
        with self._lock:
            rate = self._upload(np.asarray(self.current_lr(lr), np.float32))  # the graph's lr input is f32
            count = self._upload(np.asarray(self.step_count + 1, np.int64))
            move_off_worker_cores()
            out = self._main(*data, *tgts, *self._params, *self._state, rate, count, *self._main_consts)
            n = len(self._params)
            self._params = [out[1 + i] for i in range(n)]
            self._state = [out[1 + n + i] for i in range(len(self._state))]
            self.step_count += 1
            return float(out[0].numpy())

    def eval(self, *args: Any, **kwargs: Any) -> list[np.ndarray]:
        """The model's outputs on a batch, with the current parameters."""
        names = [s.name for s in self.layout.data]
        arrays = bind_inputs(names, [s.type for s in self.layout.data], args, kwargs, what="model")
        with self._lock:
            move_off_worker_cores()
            out = self._eval(*[self._upload(a) for a in arrays], *self._params, *self._eval_consts)
            return [out[i].numpy() for i in range(len(self.layout.eval_outputs))]

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """{"params": {name: array}, "optimizer": {"step": n, "lr": x, "state": {name: {slot: array}}}} (copies)."""
        with self._lock:
            params = {p.name: t.numpy() for p, t in zip(self.layout.params, self._params)}
            state: dict[str, dict[str, np.ndarray]] = {}
            for (name, slot), t in zip(self.layout.state_names(), self._state):
                state.setdefault(name, {})[slot] = t.numpy()
            return {"params": params, "optimizer": {"step": self.step_count, "lr": self.lr, "state": state}}

    @property
    def params(self) -> dict[str, np.ndarray]:
        return self.state_dict()["params"]

    def load_state_dict(self, state: Mapping) -> None:
        """Set parameters (and, when given, optimizer state, step count and lr) from a `state_dict()`."""
        params = state.get("params") if isinstance(state, Mapping) else None
        if not isinstance(params, Mapping):
            raise InputError("a train state dict has a 'params' mapping (name -> array); see TrainSession.state_dict()")
        expected = [p.name for p in self.layout.params]
        _check_names("parameter", expected, params)
        opt = state.get("optimizer")
        if opt is not None:
            slots = opt.get("state", {})
            if self.layout.slots:
                _check_names("optimizer state for parameter", expected, slots)
            for name in expected:
                if self.layout.slots:
                    _check_names(f"optimizer slot of {name!r}", self.layout.slots, slots[name])
        with self._lock:
            self._set_params(params)
            if opt is not None:
                specs = {p.name: p for p in self.layout.params}
                self._state = [
                    self._upload(check_array(f"{name}:{slot}", specs[name].type, opt["state"][name][slot]))
                    for name, slot in self.layout.state_names()
                ]
                self.step_count = int(opt.get("step", 0))
                self.lr = float(opt.get("lr", self.lr))

    def save_checkpoint(self, path: str) -> str:
        """Parameters, optimizer state, step and lr in one file (a zip of .npy arrays and a manifest)."""
        sd = self.state_dict()
        manifest = {
            "format": CHECKPOINT_FORMAT, "graphc_version": __version__, "step": sd["optimizer"]["step"], "lr": sd["optimizer"]["lr"],
            "optimizer": self.layout.optimizer["kind"], "params": [p.to_json() for p in self.layout.params], "slots": self.layout.slots,
        }
        arrays = {f"param:{k}": v for k, v in sd["params"].items()}
        arrays.update({f"state:{k}:{slot}": v for k, slots in sd["optimizer"]["state"].items() for slot, v in slots.items()})
        tmp = f"{path}.tmp-{os.getpid()}"
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr("manifest.json", json.dumps(manifest, indent=1))
            for k, v in arrays.items():
                z.writestr(f"{k}.npy", _npy_bytes(v))
        os.replace(tmp, path)  # a crash mid-write never leaves a truncated checkpoint behind
        return path

    def load_checkpoint(self, path: str) -> None:
        manifest, arrays = read_checkpoint(path)
        if manifest.get("optimizer") != self.layout.optimizer["kind"] or list(manifest.get("slots", [])) != self.layout.slots:
            raise InputError(
                f"{path}: checkpoint of a {manifest.get('optimizer')} optimizer (slots {manifest.get('slots')}), "
                f"this train step uses {self.layout.optimizer['kind']} (slots {self.layout.slots})"
            )
        params = {k[len("param:"):]: v for k, v in arrays.items() if k.startswith("param:")}
        state: dict[str, dict[str, np.ndarray]] = {}
        for k, v in arrays.items():
            if k.startswith("state:"):
                name, _, slot = k[len("state:"):].rpartition(":")
                state.setdefault(name, {})[slot] = v
        try:
            self.load_state_dict({"params": params, "optimizer": {"step": manifest["step"], "lr": manifest["lr"], "state": state}})
        except InputError as e:
            raise InputError(f"{path}: {e}") from None


def _check_names(what: str, expected: Sequence[str], given: Mapping) -> None:
    if not isinstance(given, Mapping):
        raise InputError(f"{what}: expected a mapping of {', '.join(expected)}, got {type(given).__name__}")
    missing = [n for n in expected if n not in given]
    unexpected = [n for n in given if n not in expected]
    if missing or unexpected:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unexpected {', '.join(map(str, unexpected))}"] if unexpected else [])
        raise InputError(f"{what} names do not match the train step: {'; '.join(parts)}")


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def read_checkpoint(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(manifest, arrays by key) of a checkpoint file; problems are InputErrors naming the file."""
    import io

    try:
        with zipfile.ZipFile(path) as z:
            manifest = json.loads(z.read("manifest.json"))
            arrays = {n[: -len(".npy")]: np.load(io.BytesIO(z.read(n)), allow_pickle=False) for n in z.namelist() if n.endswith(".npy")}
    except FileNotFoundError:
        raise InputError(f"{path}: no such checkpoint file") from None
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as e:
        raise InputError(f"{path}: not a graphc train checkpoint, or corrupted ({type(e).__name__}: {e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path}: not a graphc train checkpoint")
    return manifest, arrays


# ---------------------------------------------------------------------------------------
# loading train artifacts
# ---------------------------------------------------------------------------------------
def is_train_artifact(art: ArtifactData) -> bool:
    return art.meta.get("kind") == ARTIFACT_KIND


def train_session_from_artifact(art: ArtifactData, device: str = "cpu", source: str = "<memory>") -> TrainSession:
    if not is_train_artifact(art):
        raise ArtifactError(f"{source}: an inference artifact, not a train step (load it with graphc.runtime.load)")
    target = Target.from_json(art.target)
    check_loadable(target)
    try:
        layout = TrainLayout.from_json(art.meta["train"])
    except (KeyError, TypeError, ValueError) as e:
        raise ArtifactError(f"{source}: train step description is inconsistent ({type(e).__name__}: {e})") from None
    arrays = [a for _, a in art.params]
    n_main, n_eval = layout.n_main_consts, layout.n_eval_consts
    if len(arrays) != n_main + n_eval + len(layout.params):
        raise ArtifactError(f"{source}: {len(arrays)} stored arrays, the train step description needs {n_main + n_eval + len(layout.params)}")
    params = dict(zip((p.name for p in layout.params), arrays[n_main + n_eval:]))
    module = load_library(art, source)
    return TrainSession(module, layout, arrays[:n_main], arrays[n_main:n_main + n_eval], params, target, device, art.meta)


def load_train(path: str, device: str = "cpu") -> TrainSession:
    """Load a train artifact written by `graphc compile --train` (or TrainStep.save)."""
    return train_session_from_artifact(read_artifact(path), device, source=path)
