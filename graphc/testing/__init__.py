"""Test harnesses that ship with graphc: runtime-only Python environments (the deployment
setting: TVM runtime, numpy and graphc.runtime, nothing else) on this machine or an
emulated aarch64 one (`graphc.testing.qemu`). Importing this package imports nothing heavy."""
