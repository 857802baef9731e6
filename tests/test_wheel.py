"""The wheel is the product (issue 20, item 9): built from this tree, installed non-editable into a fresh
environment, every command's --help and one real call per wing work (.ci/wheel_check.py does the work;
its dependencies come from this test environment, nothing of the checkout is on its path)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_wheel_installed_non_editable_runs_every_command_and_wing():
    done = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "wheel_check.py")], capture_output=True, text=True, timeout=1500
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for wing in ("init", "ingest", "compare", "eval", "finetune", "reembed", "serve /health"):
        assert f"wheel-check: {wing}" in done.stderr
    assert "--help of" in done.stderr and "wheel-check: OK" in done.stderr


def test_packages_are_found_so_every_folder_of_vstore_is_in_the_wheel(monkeypatch):
    """setup.py finds the packages: each folder of vstore/ with an __init__.py, and alembic/ and sql/
    with their subfolders under vstore._alembic / vstore._sql (what the slow test then installs)."""
    import runpy

    import setuptools

    seen: dict[str, list[str]] = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: seen.update(kwargs))
    monkeypatch.chdir(ROOT)
    runpy.run_path(str(ROOT / "setup.py"))
    packages = set(seen["packages"])
    folders = {p.parent for p in (ROOT / "vstore").rglob("__init__.py") if "__pycache__" not in p.parts}
    assert {".".join(f.relative_to(ROOT).parts) for f in folders} <= packages
    assert {"vstore.train", "vstore._alembic", "vstore._alembic.versions"} <= packages
    assert {"vstore._sql", "vstore._sql.api", "vstore._sql.queries"} <= packages
