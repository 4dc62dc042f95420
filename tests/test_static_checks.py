"""Lint and type checks as tests, so the README's one test command runs them too.

ruff's rule set and mypy's strict scope live in pyproject.toml; both must report zero
findings. They run from the repository root on the working tree, as a contributor would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    result = _run("ruff", "check", "--output-format", "concise", ".")
    print(f"\nruff: {result.stdout.strip().splitlines()[-1] if result.stdout.strip() else 'no output'}")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_scope_has_no_errors() -> None:
    result = _run("mypy")
    print(f"\nmypy: {result.stdout.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Success: no issues found"), result.stdout
