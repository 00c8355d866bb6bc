"""A TVM RPC server for a device machine that has only the TVM runtime (and graphc.runtime).

    python -m graphc.runtime.rpc_server --tracker HOST:PORT --key rasp4 [--host 0.0.0.0 --port 9090]

It registers with the tracker under KEY and serves sessions like `python -m tvm.exec.rpc_server`,
but in this process: TVM's launcher starts the server in a helper interpreter through
cloudpickle, which a runtime-only install lacks (and which qemu-user cannot start as a plain
subprocess). Each session still runs in a forked child, as TVM's does.

It also answers ``graphc.rpc.check_loadable(target_json)`` so a client (`graphc.remote`) can ask
whether an artifact's code runs on this machine (its CPU architecture and features) before it
uploads the library, and get graphc's clear error instead of a failed dlopen or SIGILL.
"""
from __future__ import annotations

import argparse
import json
import sys

CHECK_FUNC = "graphc.rpc.check_loadable"


def _check_loadable(target_json: str) -> str:
    """"" when an artifact compiled for `target_json` runs here, else the reason it does not."""
    from graphc.errors import GraphcError
    from graphc.targets import Target, check_loadable

    try:
        check_loadable(Target.from_json(json.loads(target_json)))
    except GraphcError as e:
        return str(e)
    return ""


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def serve(tracker: tuple[str, int], key: str, host: str = "0.0.0.0", port: int = 9090, port_end: int = 9199,
          custom_addr: str | None = None, on_ready=None) -> None:
    """Register with `tracker` under `key` and serve until killed; `on_ready(port)` once listening."""
    import tvm_ffi
    from tvm.rpc.server import PopenRPCServerState

    tvm_ffi.register_global_func(CHECK_FUNC, _check_loadable, override=True)  # inherited by the forked sessions
    state = PopenRPCServerState(host, port, port_end, tracker_addr=tracker, key=key, custom_addr=custom_addr, silent=True)
    if on_ready is not None:
        on_ready(state.port)
    state.thread.join()  # serves forever; returns only when TVM's listen loop gave up
    from graphc.errors import GraphcError

    raise GraphcError(f"RPC server stopped: lost the tracker at {tracker[0]}:{tracker[1]} (is it running?)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m graphc.runtime.rpc_server", description=__doc__.split("\n\n")[0])
    p.add_argument("--tracker", type=_address, required=True, metavar="HOST:PORT", help="the RPC tracker to register with")
    p.add_argument("--key", required=True, help="the device key clients request (e.g. rasp4, graviton)")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    p.add_argument("--port", type=int, default=9090, help="first port to try (default 9090)")
    p.add_argument("--port-end", type=int, default=9199, help="last port to try (default 9199)")
    p.add_argument("--custom-addr", help="address to report to the tracker (default: what the tracker sees)")
    args = p.parse_args(argv)

    def ready(bound: int) -> None:
        print(f"graphc rpc server: listening on {args.host}:{bound}, key {args.key!r}, tracker {args.tracker[0]}:{args.tracker[1]}",
              flush=True)

    from graphc.errors import GraphcError

    try:
        serve(args.tracker, args.key, args.host, args.port, args.port_end, args.custom_addr, on_ready=ready)
    except GraphcError as e:
        print(f"graphc: error: {e}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
