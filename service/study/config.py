"""The `study` config section: the human A/B study's web app (`zipp study`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from schemas.config import Section
from schemas.tables import STUDY


class StudyConfig(Section):
    """Where the study's store lives, where it listens, how the admin is known and how
    its render worker leases jobs."""

    db: str | None = Field(
        None, description="the SQLite store; null: <lake.root>/study/study.sqlite"
    )
    host: str = Field("127.0.0.1", description="the address `zipp study serve` binds")
    port: int = Field(8090, ge=1, le=65535)
    public_url: str | None = Field(
        None, description="the base of invite links (behind a proxy); null: http://host:port"
    )
    admin_token_env: str = Field(
        "ZIPP_STUDY_ADMIN_TOKEN", description="environment variable holding the admin token"
    )
    survey: str = Field("conf/study_survey.yaml", description="the intake survey's questions")
    lease_s: float = Field(
        300.0, gt=0, description="a running job older than this goes back to pending"
    )
    max_attempts: int = Field(3, ge=1, description="tries of a job before it is failed")
    poll_s: float = Field(0.5, gt=0, description="the worker's wait when the queue is empty")
    secure_cookies: bool = Field(False, description="cookies only over HTTPS (behind TLS)")


def db_path(study: StudyConfig, lake_root: str | Path) -> Path:
    """The store's file: `study.db`, or the lake's study folder."""
    return Path(study.db) if study.db else Path(lake_root) / STUDY / "study.sqlite"
