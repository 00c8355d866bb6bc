# graphc: `make demo` runs the main job on the built-in seed CNN; `make test` runs the test suite.
# Both create the virtual environment on first use (Python 3.10+, pip; torch 2.13.0 CPU comes from
# the local wheel directory configured for pip on these machines).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.graphc-installed
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: setup
	$(PY) -m graphc.examples.demo

test: setup
	$(PY) -m pytest -n 2 -q $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -n 2 -q -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf build .pytest_cache
