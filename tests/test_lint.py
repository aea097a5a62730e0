"""ruff over the code, with the configuration in pyproject.toml ([tool.ruff]).

To see or fix the findings: ``python -m ruff check harness plugins tests bench`` (``--fix`` applies
the safe fixes: import order, pyupgrade's rewrites, unused imports).
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PATHS = ["harness", "plugins", "tests", "bench"]


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is not installed (pip install -e .[test])")
def test_ruff_check():
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", *PATHS],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"ruff check {' '.join(PATHS)} (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
