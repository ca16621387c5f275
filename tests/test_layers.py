"""The floors of ARCHITECTURE.md are executable: `lint-imports` (contracts in
pyproject.toml) passes on the tree and fails on a deliberate sideways or upward import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engines.code import PACKAGES, project_root

LINT = Path(sys.executable).with_name("lint-imports")


def _copy_tree(dest: Path) -> None:
    root = project_root()
    shutil.copy(root / "pyproject.toml", dest)
    for p in PACKAGES:
        shutil.copytree(root / p, dest / p, ignore=shutil.ignore_patterns("__pycache__"))


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    # the copy is found first on the path, never the installed project
    env = {"PYTHONPATH": str(cwd), "PATH": str(LINT.parent), "HOME": str(cwd)}
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_tree_keeps_its_floors(tmp_path):
    _copy_tree(tmp_path)
    out = _lint(tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 kept, 0 broken" in out.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # sideways: a domain package importing another (lazily, inside a function)
        (
            "evaluation/stats.py",
            "def _sideways():\n    import generation.prompts  # noqa\n",
            "Domain packages never import each other",
        ),
        # upward: a ground-floor tool importing a domain package
        (
            "storage/lake.py",
            "import graph.model  # noqa\n",
            "Floors: jobs > domain packages > shared tools",
        ),
        # upward: a domain package importing the top floor
        (
            "graph/metrics.py",
            "from jobs import dag  # noqa\n",
            "Floors: jobs > domain packages > shared tools",
        ),
    ],
)
def test_a_wrong_import_breaks_the_build(tmp_path, module, line, contract):
    _copy_tree(tmp_path)
    f = tmp_path / module
    f.write_text(f.read_text() + "\n\n" + line)
    out = _lint(tmp_path)
    assert out.returncode != 0
    text = " ".join(out.stdout.split())
    assert f"{contract} BROKEN" in text, out.stdout
