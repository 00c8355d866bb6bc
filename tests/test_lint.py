"""The code base stays lint-clean (pyflakes, pycodestyle, import order) under ruff."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.fail("ruff is not installed: `pip install -e .[test]` installs it")
    res = subprocess.run([ruff, "check", "graphc", "passes", "runtime", "tests", "benchmarks"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
