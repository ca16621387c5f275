"""The `zipp` CLI and the per-stage entry points, driven as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from jobs.cli import app
from tests.static_server import serve_folder

runner = CliRunner()


def test_every_command_has_help():
    out = runner.invoke(app, ["--help"])
    assert out.exit_code == 0
    for cmd in ("sample", "ingest", "run", "status"):
        assert cmd in out.output
        sub = runner.invoke(app, [cmd, "--help"])
        assert sub.exit_code == 0 and "Usage" in sub.output


def test_stage_entry_point_help_names_engine():
    out = subprocess.run(
        [sys.executable, "-m", "jobs.ingest", "--help"], capture_output=True, text=True, check=True
    )
    assert "Engine: spark" in out.stdout and "key=value" in out.stdout


def test_bad_stage_and_bad_config_are_one_line_errors(tmp_path: Path):
    out = runner.invoke(app, ["run", "nosuchstage", f"lake.root={tmp_path}"])
    assert out.exit_code == 2 and "unknown stage" in out.output
    out = runner.invoke(app, ["run", "ingest.nokey=1"])
    assert out.exit_code == 2 and "ingest.nokey: unknown key" in out.output
    out = runner.invoke(app, ["run", "ingest.files_per_job=many"])
    assert out.exit_code == 2 and "ingest.files_per_job" in out.output
    out = runner.invoke(
        app, ["run", f"input.dumps={tmp_path / 'missing'}", f"lake.root={tmp_path / 'lake'}"]
    )
    assert out.exit_code == 2 and "input.dumps" in out.output


def test_sample_ingest_status_end_to_end(spark, tmp_path: Path):
    (tmp_path / "w").mkdir()
    with serve_folder(tmp_path / "w") as url:
        _sample_ingest_status(tmp_path, url)


def _sample_ingest_status(tmp_path: Path, url: str) -> None:
    out = runner.invoke(
        app,
        [
            "sample",
            "--out",
            str(tmp_path / "w"),
            "--users",
            "40",
            "--months",
            "2021-05",
            "--image-size",
            "8",
            "--image-base-url",
            url,
        ],
    )
    assert out.exit_code == 0, out.output
    assert (tmp_path / "w/dumps/RS_2021-05.zst").exists()
    lake = tmp_path / "lake"
    out = runner.invoke(
        app,
        [
            "ingest",
            "--dumps",
            str(tmp_path / "w/dumps"),
            "--lake",
            str(lake),
            "-c",
            "conf/local.yaml",
            "spark.master=local[2]",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "RC_2021-05.zst" in out.output and "✗" not in out.output
    out = runner.invoke(
        app,
        [
            "status",
            "-c",
            "conf/local.yaml",
            f"lake.root={lake}",
            f"input.dumps={tmp_path / 'w/dumps'}",
            "spark.master=local[2]",
        ],
    )
    assert out.exit_code == 0 and "current" in out.output
    assert "bronze/comments" in out.output
    out = runner.invoke(
        app,
        [
            "run",
            "-c",
            "conf/local.yaml",
            f"lake.root={lake}",
            f"input.dumps={tmp_path / 'w/dumps'}",
            "spark.master=local[2]",
            "smoke.steps=20",
            "smoke.vae_steps=5",
            "smoke.batch_size=8",
            "diffusion.seeds=1",
        ],
    )
    assert out.exit_code == 0 and "up to date, skipped" in out.output
