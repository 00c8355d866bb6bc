"""The artifact: one file holding everything needed to run a compiled model.

Layout (an uncompressed zip, so members can be read without unpacking all):

    manifest.json   format version, graphc version, target, input/output signature,
                    parameter table, kernel list, compile stats, and the SHA-256 of
                    the library and parameter blobs
    lib.so          the TVM module (kernels + VM bytecode), exported as a shared library
    params.bin      every parameter's bytes, back to back, 64-byte aligned

Reading needs only the standard library and numpy; loading the library needs the
TVM runtime (not the compiler).
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphc import __version__, dtypes
from graphc.errors import ArtifactError
from graphc.ir import TensorType

FORMAT = "graphc-artifact"
FORMAT_VERSION = 1
ALIGN = 64


@dataclass
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def type(self) -> TensorType:
        return TensorType(self.dtype, self.shape)

    def to_json(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    def random(self, rng: np.random.Generator) -> np.ndarray:
        """A valid example input: standard normal floats, 0/1 integers (token ids, indices) and bools."""
        dt = self.type.np_dtype
        if dt.kind == "f":
            return rng.standard_normal(self.shape).astype(dt)
        if dt.kind == "b":
            return rng.integers(0, 2, self.shape).astype(bool)
        return rng.integers(0, 2, self.shape).astype(dt)

    @staticmethod
    def from_json(d: dict) -> "TensorSpec":
        return TensorSpec(d["name"], d["dtype"], tuple(d["shape"]))


@dataclass
class ArtifactData:
    """An artifact in memory: the manifest fields plus the library bytes and parameters."""

    target: dict
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    lib: bytes
    params: list[tuple[TensorSpec, np.ndarray]]
    meta: dict[str, Any] = field(default_factory=dict)  # kernels, timings, graph name, pipeline...
    graphc_version: str = __version__


def _params_blob(params: list[tuple[TensorSpec, np.ndarray]]) -> tuple[bytes, list[dict]]:
    buf = io.BytesIO()
    table = []
    for spec, arr in params:
        pad = (-buf.tell()) % ALIGN
        buf.write(b"\0" * pad)
        data = np.ascontiguousarray(arr).tobytes()
        table.append({**spec.to_json(), "offset": buf.tell(), "nbytes": len(data)})
        buf.write(data)
    return buf.getvalue(), table


def _sha256(*blobs: bytes) -> str:
    h = hashlib.sha256()
    for b in blobs:
        h.update(b)
    return h.hexdigest()


def write_artifact(path: str, art: ArtifactData) -> None:
    blob, table = _params_blob(art.params)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "graphc_version": art.graphc_version,
        "target": art.target,
        "inputs": [s.to_json() for s in art.inputs],
        "outputs": [s.to_json() for s in art.outputs],
        "params": table,
        "sha256": {"lib.so": _sha256(art.lib), "params.bin": _sha256(blob)},
        "meta": art.meta,
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("manifest.json", json.dumps(manifest, indent=1))
        z.writestr("lib.so", art.lib)
        z.writestr("params.bin", blob)


def read_artifact(path: str) -> ArtifactData:
    """Read and validate an artifact; every problem is an ArtifactError naming the file."""
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            missing = {"manifest.json", "lib.so", "params.bin"} - names
            if missing:
                raise ArtifactError(f"{path}: not a complete graphc artifact (missing {', '.join(sorted(missing))})")
            manifest = json.loads(z.read("manifest.json"))
            lib = z.read("lib.so")
            blob = z.read("params.bin")
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no such artifact file") from None
    except IsADirectoryError:
        raise ArtifactError(f"{path}: is a directory, not an artifact file") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as e:
        raise ArtifactError(f"{path}: not a graphc artifact, or truncated/corrupted ({e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{path}: manifest is corrupted ({e})") from None
    except zipfile.error as e:  # pragma: no cover - other zip damage
        raise ArtifactError(f"{path}: corrupted artifact ({e})") from None
    except OSError as e:
        raise ArtifactError(f"{path}: cannot read artifact ({e})") from None
    except Exception as e:  # zlib/CRC errors surface as various types
        raise ArtifactError(f"{path}: corrupted artifact ({type(e).__name__}: {e})") from None

    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path}: not a graphc artifact (format {manifest.get('format') if isinstance(manifest, dict) else '?'!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: artifact format version {manifest.get('format_version')} (graphc {manifest.get('graphc_version')}); "
            f"this graphc {__version__} reads version {FORMAT_VERSION}: recompile the model"
        )
    if manifest.get("graphc_version") != __version__:
        raise ArtifactError(
            f"{path}: compiled by graphc {manifest.get('graphc_version')}, this is graphc {__version__}: recompile the model"
        )
    sums = manifest.get("sha256", {})
    if _sha256(lib) != sums.get("lib.so") or _sha256(blob) != sums.get("params.bin"):
        raise ArtifactError(f"{path}: checksum mismatch: the artifact is corrupted")
    try:
        params = []
        for p in manifest["params"]:
            spec = TensorSpec(p["name"], p["dtype"], tuple(p["shape"]))
            arr = np.frombuffer(blob, dtype=dtypes.to_numpy(spec.dtype), count=int(np.prod(spec.shape, dtype=np.int64)), offset=p["offset"])
            params.append((spec, arr.reshape(spec.shape)))
        return ArtifactData(
            target=manifest["target"],
            inputs=[TensorSpec.from_json(d) for d in manifest["inputs"]],
            outputs=[TensorSpec.from_json(d) for d in manifest["outputs"]],
            lib=lib,
            params=params,
            meta=manifest.get("meta", {}),
            graphc_version=manifest["graphc_version"],
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ArtifactError(f"{path}: manifest is inconsistent ({type(e).__name__}: {e})") from None
