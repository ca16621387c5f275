"""The schedule as an Airflow DAG file (`zipp dag --format airflow`)."""

from __future__ import annotations

import json
import shlex

from jobs.runner import Stage
from jobs.schedules.common import command, header, sh_line, tasks
from jobs.schedules.target import Target

_TAKEN = {"dag", "DAG", "BashOperator", "datetime", "timedelta", "timezone"}


def render_airflow(stages: list[Stage], target: Target) -> str:
    """An Airflow DAG file: one `BashOperator` per stage (task_id = stage name), the
    producer -> consumer edges as ``a >> b``, monthly, no catch-up, one run at a time."""
    ts = tasks(stages)
    for t in ts:
        if not t.name.isidentifier() or t.name in _TAKEN:
            raise ValueError(f"stage name {t.name!r} cannot name a variable of the DAG file")
    doc = "\n".join(header(stages, target, "airflow"))
    secrets = ", ".join(target.secrets) or "none"
    out = [
        f'"""{doc}\n\nAPI keys are read from the worker\'s environment ({secrets}); set them',
        'there (or as Airflow connections/secrets backends), never in this file."""',
        "",
        "from datetime import datetime, timedelta, timezone",
        "",
        "try:  # Airflow 3",
        "    from airflow.providers.standard.operators.bash import BashOperator",
        "    from airflow.sdk import DAG",
        "except ImportError:  # Airflow 2",
        "    from airflow import DAG",
        "    from airflow.operators.bash import BashOperator",
        "",
        "with DAG(",
        f"    dag_id={json.dumps(target.dag_id)},",
        f"    schedule={json.dumps(target.schedule)},",
        "    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),",
        "    catchup=False,",
        "    max_active_runs=1,",
        '    default_args={"retries": 1, "retry_delay": timedelta(minutes=10)},',
        '    tags=["zipp"],',
        ") as dag:",
    ]
    for t in ts:
        path = f'export PATH={shlex.quote(target.bin_dir)}:"$PATH" && ' if target.bin_dir else ""
        cmd = f"cd {shlex.quote(target.project_root)} && {path}{sh_line(command(t, target))}"
        out += [
            f"    {t.name} = BashOperator(",
            f"        task_id={json.dumps(t.name)},",
            f"        bash_command={json.dumps(cmd)},",
            "    )",
        ]
    out.append("")
    out += [f"    {u} >> {t.name}" for t in ts for u in t.upstream]
    return "\n".join(out) + "\n"
