"""The package is clean under ruff (lint and format) and mypy, with the settings in pyproject.toml.

Fix a failure rather than silencing it: ``ruff format sdmodel`` for layout, ``ruff check sdmodel --fix``
for what ruff can fix itself; the message says where the rest is.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, timeout: float = 300) -> None:
    out = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(args)} failed (exit {out.returncode}):\n{out.stdout}{out.stderr}"


@pytest.mark.parametrize(
    "args",
    [("ruff", "check", "sdmodel"), ("ruff", "format", "--check", "--diff", "sdmodel")],
    ids=["ruff-check", "ruff-format"],
)
def test_ruff(args):
    _run(*args)


def test_mypy():
    # incremental: a warm .mypy_cache takes about a second, a cold one about ten
    _run("mypy", "sdmodel")
