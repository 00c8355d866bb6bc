"""Running graphc artifacts on an emulated aarch64 Linux machine (qemu user mode).

The machine is `qemu-aarch64 -L <sysroot>` running Debian's arm64 Python on a sysroot made of

* Debian arm64 packages unpacked with `dpkg -x`: python3.X-minimal, its standard library and
  the C libraries it, numpy and the TVM runtime link against;
* a runtime-only site (`graphc.testing.runtime_only`) made of the aarch64 wheels of
  apache-tvm, apache-tvm-ffi and numpy at the versions installed here, minus libtvm_compiler.so.

It is built once into a cache directory (``$GRAPHC_ARM64_CACHE``, default
``~/.cache/graphc/arm64``), one subdirectory per combination of versions, and reused by every
later run; ``python -m graphc.testing.qemu prepare`` builds it ahead of time (CI does).
Building needs qemu-aarch64 (Debian: qemu-user), apt with the arm64 architecture enabled
(``dpkg --add-architecture arm64 && apt-get update``, as root) and pip access to PyPI.

    machine = qemu.arm64_machine()                       # builds the sysroot on first use
    run = machine.run_artifact("model.gca", {"x": x})   # `graphc run` inside the emulator
    run.outputs, run.report                             # outputs; what the process loaded

Timings under emulation mean nothing; numerics do.
"""
from __future__ import annotations

import argparse
import fcntl
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import GraphcError
from .runtime_only import COMPILER_LIB, link_graphc, runtime_only_env

CACHE_ENV = "GRAPHC_ARM64_CACHE"
QEMU = "qemu-aarch64"
# C libraries of the sysroot, besides Python's own packages; alternatives in preference
# order (Debian renamed some for the 64-bit time_t transition)
LIBRARIES = (
    ("libc6",), ("libgcc-s1",), ("libstdc++6",), ("zlib1g",), ("libexpat1",), ("libffi8",),
    ("libbz2-1.0",), ("liblzma5",), ("libssl3t64", "libssl3"),
)
# the runtime-only site: these distributions' aarch64 wheels, at the versions installed here
WHEELS = ("apache-tvm", "apache-tvm-ffi", "numpy", "typing_extensions", "ml_dtypes")
WHEEL_PLATFORMS = ("manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux_2_24_aarch64",
                   "manylinux_2_17_aarch64", "manylinux2014_aarch64")
# not unpacked: the compiler (the point of a runtime-only site) and C++ headers nobody reads here
DROPPED = (f"tvm/lib/{COMPILER_LIB}", "tvm/3rdparty/", "tvm/include/")


class EmulatorError(GraphcError):
    """The emulated aarch64 machine cannot be built or did not run (says what to install or what failed)."""


def cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "graphc" / "arm64"


def _run(cmd: list[str], what: str, cwd: Path | None = None, fix: str = "") -> str:
    try:
        res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise EmulatorError(f"{what}: {cmd[0]} is not installed{'; ' + fix if fix else ''}") from None
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip()[-1500:]
        raise EmulatorError(f"{what} failed ({' '.join(cmd[:4])} ...): {tail}{'; ' + fix if fix else ''}")
    return res.stdout


APT_FIX = "enable arm64 packages as root: dpkg --add-architecture arm64 && apt-get update"


def _apt_has(package: str) -> bool:
    res = subprocess.run(["apt-cache", "show", "--no-all-versions", f"{package}:arm64"], capture_output=True, text=True)
    return res.returncode == 0 and "Package:" in res.stdout


def _debian_python() -> str:
    """The X.Y of the Python Debian ships for arm64 (python3-minimal's interpreter)."""
    out = _run(["apt-cache", "depends", "python3-minimal:arm64"], "looking up Debian's arm64 Python", fix=APT_FIX)
    m = re.search(r"python3\.(\d+)-minimal", out)
    if not m:
        raise EmulatorError(f"apt knows no arm64 python3-minimal; {APT_FIX}")
    return f"3.{m.group(1)}"


def _deb_packages(py: str) -> list[str]:
    packages = [f"python{py}-minimal", f"libpython{py}-minimal", f"libpython{py}-stdlib"]
    for alternatives in LIBRARIES:
        found = next((p for p in alternatives if _apt_has(p)), None)
        if found is None:
            raise EmulatorError(f"apt has no arm64 package {' or '.join(alternatives)}; {APT_FIX}")
        packages.append(found)
    return packages


def _versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in WHEELS}


def _unpack_wheel(wheel: Path, site: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            if info.filename.startswith(DROPPED) or info.filename.endswith(".pyc"):
                continue
            z.extract(info, site)


def _build(dest: Path, py: str, versions: dict[str, str], log) -> None:
    debs, wheels = dest / "debs", dest / "wheels"
    debs.mkdir(parents=True)
    wheels.mkdir()
    packages = _deb_packages(py)
    log(f"downloading arm64 packages: {' '.join(packages)}")
    _run(["apt-get", "download", *[f"{p}:arm64" for p in packages]], "apt-get download", cwd=debs, fix=APT_FIX)
    for deb in sorted(debs.glob("*.deb")):
        _run(["dpkg", "-x", str(deb), str(dest / "root")], f"unpacking {deb.name}")
    pins = [f"{name}=={v}" for name, v in versions.items()]
    log(f"downloading aarch64 wheels: {' '.join(pins)}")
    platforms = [arg for p in WHEEL_PLATFORMS for arg in ("--platform", p)]
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", *platforms,
          "--python-version", py, "--implementation", "cp", "--abi", f"cp{py.replace('.', '')}",
          "-d", str(wheels), *pins], "pip download of the aarch64 wheels",
         fix="pip needs access to PyPI (or an index holding manylinux aarch64 wheels)")
    for wheel in sorted(wheels.glob("*.whl")):
        _unpack_wheel(wheel, dest / "site")
    shutil.rmtree(debs)
    shutil.rmtree(wheels)  # the unpacked site is what runs; the 100 MB of wheels are not needed again
    (dest / "manifest.json").write_text(json.dumps({"python": py, "debs": packages, "wheels": versions}, indent=1))


@dataclass
class ArmRun:
    """One command run in the emulator: its exit status and output, the outputs it saved, and
    what the process loaded (`graphc.testing.runtime_probe.loaded_report`)."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    report: dict = field(default_factory=dict)
    outputs: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class Arm64Machine:
    root: Path  # the sysroot (qemu -L)
    site: Path  # the runtime-only site: tvm (no compiler), tvm_ffi, numpy
    python: Path  # the arm64 interpreter inside root
    qemu: str

    def command(self, args: list[str], cpu: str | None = None) -> list[str]:
        """qemu-aarch64 [-cpu CPU] -L root python -S -P ARGS: no site-packages, and no current
        directory on sys.path (a checkout's graphc/ would shadow the installed layout): PYTHONPATH only."""
        return [self.qemu, *(["-cpu", cpu] if cpu else []), "-L", str(self.root), str(self.python), "-S", "-P", *args]

    def run_python(self, args: list[str], *, work: Path, cwd: Path | None = None, cpu: str | None = None,
                   timeout: float = 900) -> subprocess.CompletedProcess:
        """The emulated Python on ARGS (in `cwd`), runtime-only: the TVM runtime, numpy, and graphc
        from this installation, linked into the scratch directory `work`."""
        site = work / "graphc-site"
        if not site.exists():
            link_graphc(site)
        try:
            return subprocess.run(self.command(args, cpu), cwd=cwd, env=runtime_only_env([self.site, site]),
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise EmulatorError(f"{' '.join(args[:3])} under {self.qemu} did not finish in {timeout:.0f}s") from e

    def popen(self, args: list[str], *, work: Path, cpu: str | None = None, **popen_args) -> subprocess.Popen:
        """The emulated, runtime-only Python on ARGS as a background process (e.g. an RPC server)."""
        site = work / "graphc-site"
        if not site.exists():
            link_graphc(site)
        return subprocess.Popen(self.command(args, cpu), env=runtime_only_env([self.site, site]), **popen_args)

    def run_graphc(self, args: list[str], *, work: Path, cwd: Path | None = None, cpu: str | None = None,
                   timeout: float = 900) -> ArmRun:
        """`graphc ARGS` in the emulator, with the report of what the process loaded."""
        report = work / "loaded.json"
        t0 = time.perf_counter()
        res = self.run_python(["-m", "graphc.testing.runtime_probe", str(report), *args], work=work, cwd=cwd, cpu=cpu,
                              timeout=timeout)
        loaded = json.loads(report.read_text()) if report.exists() else {}
        return ArmRun(res.returncode, res.stdout, res.stderr, time.perf_counter() - t0, loaded)

    def run_kernels(self, lib: Path, kernel_args: dict[str, np.ndarray], *, work: Path, cpu: str | None = None,
                    timeout: float = 900) -> dict[str, np.ndarray]:
        """Call the kernels of an aarch64 library in the emulator (`graphc.testing.run_kernels`:
        `kernel_args` maps NAME/inK and NAME/outK to arrays); returns NAME/outK (or NAME/error)."""
        from .run_kernels import decode, encode

        np.savez(work / "kernel_args.npz", **encode(kernel_args))
        res = self.run_python(["-m", "graphc.testing.run_kernels", str(lib), str(work / "kernel_args.npz"),
                               str(work / "kernel_outs.npz")], work=work, cpu=cpu, timeout=timeout)
        if res.returncode != 0:
            raise EmulatorError(f"running the kernels of {lib} under {self.qemu} exited {res.returncode}: {res.stderr.strip()[-3000:]}")
        with np.load(work / "kernel_outs.npz") as z:
            return decode({k: z[k] for k in z.files})

    def run_artifact(self, artifact: str | os.PathLike, inputs: dict[str, np.ndarray], *, device: str = "cpu",
                     cpu: str | None = None, timeout: float = 900) -> ArmRun:
        """`graphc run ARTIFACT --device DEVICE` on `inputs` (by name) in the emulator; returns the
        run with its outputs in artifact order. A failed run raises EmulatorError with its stderr."""
        with tempfile.TemporaryDirectory(prefix="graphc-arm64-") as tmp:
            work = Path(tmp)
            args = ["run", os.fspath(Path(artifact).resolve()), "--device", device, "--save", str(work / "outputs.npz")]
            for i, (name, array) in enumerate(inputs.items()):
                np.save(work / f"input{i}.npy", np.asarray(array))
                args += ["--input", f"{name}={work / f'input{i}.npy'}"]
            run = self.run_graphc(args, work=work, cpu=cpu, timeout=timeout)
            if run.returncode != 0 or not (work / "outputs.npz").exists():
                raise EmulatorError(f"graphc run {artifact} under {self.qemu} exited {run.returncode}: {run.stderr.strip()[-3000:]}")
            with np.load(work / "outputs.npz") as z:
                run.outputs = [z[k] for k in z.files]
        return run


def _machine_from(dest: Path, qemu: str) -> Arm64Machine:
    py = json.loads((dest / "manifest.json").read_text())["python"]
    return Arm64Machine(dest / "root", dest / "site", dest / "root" / "usr" / "bin" / f"python{py}", qemu)


def arm64_machine(log=lambda msg: None) -> Arm64Machine:
    """The emulated machine, building its sysroot into the cache first if needed (once per set of
    versions; concurrent callers wait for one builder)."""
    qemu = shutil.which(QEMU)
    if qemu is None:
        raise EmulatorError(f"{QEMU} is not installed: apt-get install qemu-user")
    versions = _versions()
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        existing = sorted(root.glob("*/manifest.json"))
        for manifest in existing:
            if json.loads(manifest.read_text())["wheels"] == versions:
                return _machine_from(manifest.parent, qemu)
        py = _debian_python()
        key = f"py{py}-" + "-".join(f"{n.replace('apache-', '')}{v}" for n, v in versions.items())
        dest = root / key
        tmp = root / f".{key}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        _build(tmp, py, versions, log)
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
        return _machine_from(dest, qemu)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m graphc.testing.qemu", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare", help="build (or find) the cached aarch64 sysroot and print where it is")
    r = sub.add_parser("run", help="`graphc run ARGS...` in the emulator (e.g. run model.gca --random)")
    r.add_argument("--cpu", help="the emulated core (qemu -cpu), e.g. cortex-a72; default: every feature")
    r.add_argument("args", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    try:
        machine = arm64_machine(log=lambda msg: print(msg, file=sys.stderr))
        if args.command == "prepare":
            print(machine.root.parent)
            return 0
        with tempfile.TemporaryDirectory(prefix="graphc-arm64-") as tmp:
            run = machine.run_graphc(args.args, work=Path(tmp), cpu=args.cpu)
        sys.stdout.write(run.stdout)
        sys.stderr.write(run.stderr)
        return run.returncode
    except GraphcError as e:
        print(f"graphc: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
