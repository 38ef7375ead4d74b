"""The tree is ruff-clean, lint and format alike (pyproject.toml's [tool.ruff])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TREE = ["rsh", "tests", "bench", "scripts"]


@pytest.mark.parametrize("check", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_is_clean(check: list[str], tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "ruff", *check, "--no-cache", *TREE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
