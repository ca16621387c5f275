"""Shipping the project's code to Spark executors and Ray workers that do not have it."""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from pathlib import Path

#: the project's import packages (what an executor or worker needs to run our code)
PACKAGES = (
    "schemas",
    "storage",
    "contract",
    "engines",
    "media",
    "llm",
    "pipelines",
    "world",
    "graph",
    "generation",
    "evaluation",
    "exports",
    "service",
    "jobs",
)


def project_root() -> Path:
    """The folder holding the project's packages."""
    return Path(__file__).resolve().parent.parent


def package_dirs() -> list[str]:
    """Absolute folders of the project's packages (Ray's ``runtime_env.py_modules``)."""
    root = project_root()
    return [str(root / p) for p in PACKAGES if (root / p).is_dir()]


def project_zip(out_dir: str | Path | None = None) -> Path:
    """A zip of the project's packages (``.py`` and package data), named by its content
    hash, for ``SparkContext.addPyFile`` / ``spark.submit.pyFiles``. Built once per
    content: an unchanged tree reuses the same file."""
    root = project_root()
    files = sorted(
        f
        for p in PACKAGES
        for f in (root / p).rglob("*")
        if f.is_file() and f.suffix in (".py", ".yaml", ".txt") and "__pycache__" not in f.parts
    )
    h = hashlib.sha1()
    for f in files:
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    out = Path(out_dir or tempfile.gettempdir()) / f"zipp-code-{h.hexdigest()[:12]}.zip"
    if not out.exists():
        tmp = out.with_suffix(".tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for f in files:
                z.write(f, str(f.relative_to(root)))
        tmp.replace(out)
    return out


def is_local_master(master: str | None) -> bool:
    """True for ``local``, ``local[*]``, ``local[N]``: executors share the driver's Python."""
    return bool(master) and master.startswith("local") and not master.startswith("local-cluster")
