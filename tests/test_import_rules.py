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


def test_no_package_imports_another_packages_private_names():
    """A name starting with _ is its module's own: another cfm package that
    needs it gets a public one (the engine's helpers were borrowed this way)."""
    import ast

    borrowed = []
    for path in sorted((ROOT / "cfm").rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        package = rel.parts[1] if len(rel.parts) > 2 else rel.parts[-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cfm.") and node.level == 0:
                other = node.module.split(".")[1]
                for alias in node.names:
                    if other != package and alias.name.startswith("_") and not alias.name.startswith("__"):
                        borrowed.append(f"{rel}: from {node.module} import {alias.name}")
    assert borrowed == []
