"""The import rules of pyproject.toml ([tool.importlinter]) hold: the engine
and the catalog import no Django and no other cfm app, accounts import no
feature app, the registry imports neither the quota nor Prepare, and no two
apps import each other. `make lint` runs the same check."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> str:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("import-linter is a test dependency (pip install -e '.[test]')")
    return exe


def test_the_import_rules_hold():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this tree, whatever an editable install points at
    done = subprocess.run([_lint_imports(), "--no-logo", "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout and "Contracts: 6 kept" in done.stdout, done.stdout[-2000:]
