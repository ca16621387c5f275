"""The schedule as a cron-ready bash script (`zipp dag --format shell`)."""

from __future__ import annotations

import shlex

from jobs.runner import Stage
from jobs.schedules.common import command, header, sh_wrapped, tasks
from jobs.schedules.target import Target


def _secret_notes(target: Target) -> list[str]:
    """Warn (not fail) where Ray stages read the keys on the cluster's nodes instead."""
    return [
        f'[ -n "${{{n}:-}}" ] || echo "zipp: {n} is not set here; the stages that call the'
        " LLM need it where they run (Ray: on the cluster's nodes)\" >&2"
        for n in target.secrets
    ]


def render_shell(stages: list[Stage], target: Target, script: str = "zipp-monthly.sh") -> str:
    """A cron-ready bash script: one command per stage in DAG order, stopping at the
    first failure (each stage skips itself when current, so a rerun resumes)."""
    lines = ["#!/usr/bin/env bash"]
    lines += [f"# {h}" for h in header(stages, target, "shell")]
    lines += [
        "# Monthly (crontab -e), one run at a time:",
        f"#   {target.schedule} flock -n /tmp/zipp-monthly.lock bash {script}"
        " >> /tmp/zipp-monthly.log 2>&1",
        "# API keys come from the environment: " + (", ".join(target.secrets) or "none needed"),
        "set -euo pipefail",
        f"cd {shlex.quote(target.project_root)}",
        *([f'export PATH={shlex.quote(target.bin_dir)}:"$PATH"'] if target.bin_dir else []),
        *_secret_notes(target),
    ]
    if not target.spark_master and any(s.engine == "spark" for s in stages):
        lines.append(': "${SPARK_MASTER:?set SPARK_MASTER (the profile leaves spark.master null)}"')
    for t in tasks(stages):
        after = ", ".join(t.upstream) or "raw input"
        lines += ["", f"# {t.name} ({t.engine}) after {after}", sh_wrapped(command(t, target))]
    lines += ["", 'echo "zipp: all stages done"']
    return "\n".join(lines) + "\n"
