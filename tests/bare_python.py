"""A Python interpreter that has every dependency but not the project: what a cluster's
executors and workers look like. The editable install's import hook is dropped at start-up
(a ``sitecustomize`` on ``PYTHONPATH``), so the project's packages import only when shipped
(a zip on ``sys.path``, Ray's ``py_modules``/``working_dir``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engines.code import PACKAGES, project_root

SITECUSTOMIZE = """\
import sys
_root = {root!r}
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in type(f).__module__
                    and "__editable__" not in getattr(f, "__module__", "")]
sys.path[:] = [p for p in sys.path if p.rstrip("/") != _root]
"""


def bare_python(folder: Path) -> Path:
    """Write an executable wrapper under `folder` that runs this venv's Python without the
    project importable; returns its path. Changing directory is left to the caller (a
    Spark executor must stay in its work dir, where shipped files land)."""
    folder.mkdir(parents=True, exist_ok=True)
    site = folder / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE.format(root=str(project_root())))
    wrapper = folder / "python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{site}" exec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def can_import_project(python: Path, cwd: Path) -> bool:
    """Whether `python`, started in `cwd`, imports any of the project's packages."""
    code = "import importlib.util as u, sys; sys.exit(any(u.find_spec(p) for p in %r))"
    out = subprocess.run([str(python), "-c", code % (PACKAGES,)], cwd=cwd, check=False)
    return out.returncode == 1
