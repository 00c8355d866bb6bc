# graphc: `make demo` runs the main job on the built-in seed CNN; `make test` runs the test suite;
# `make bench` runs the benchmark suite.
# Both create the virtual environment on first use (Python 3.10+, pip; torch 2.13.0 CPU comes from
# the local wheel directory configured for pip on these machines).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.graphc-installed
PYTEST_ARGS ?=

.PHONY: setup arm-setup demo test test-fast bench clean

setup: $(STAMP)

# the ARM tests cross-compile (gcc-aarch64-linux-gnu) and run under qemu-aarch64 with an arm64
# Python + TVM runtime sysroot: apt packages (sudo when not root) and a cached sysroot, once
arm-setup: setup
	bash .ci/arm64-deps
	$(PY) -m graphc.testing.qemu prepare

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: setup
	$(PY) -m graphc.examples.demo

test: setup arm-setup
	$(PY) -m pytest -n 2 -q $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -n 2 -q -m "not slow" $(PYTEST_ARGS)

# graphc vs PyTorch, torch.compile, ONNX Runtime and TVM's default pipeline on the six built-in
# models; BENCH_ARGS="--models mlp,cnn --rounds 3" for a quick run
bench: setup
	$(PY) -m benchmarks.suite $(BENCH_ARGS)

clean:
	rm -rf build .pytest_cache
