"""The Spark and Ray Data jobs' config sections: `input` (the dumps), `ingest`, `graph`
(the graph build) and `features` (node features)."""

from __future__ import annotations

from datetime import date

from pydantic import Field

from schemas.config import Section
from schemas.usernames import read_usernames


class InputConfig(Section):
    dumps: str = Field("data/sample/dumps", description="folder or glob of RS_/RC_ dump files")


class IngestConfig(Section):
    blocklist: str | None = Field(None, description="file of usernames to drop (one a line)")
    files_per_job: int = Field(4, ge=1)
    chunk_mb: int = Field(16, ge=1)
    max_line_mb: int = Field(64, ge=1)
    workers_per_task: int = Field(
        0, ge=0, description="parsing processes per ingest task; 0 = cores over partitions"
    )
    split_mb: float = Field(256, gt=0, description="compressed MB per task of a .zst_blocks file")

    def usernames(self) -> frozenset[str]:
        """The blocklist's usernames, lower-cased (`schemas.usernames`)."""
        return read_usernames(self.blocklist, "ingest.blocklist")


class GraphConfig(Section):
    bots: str | None = Field(None, description="file of bot usernames (one a line)")
    min_user_interactions: int = Field(3, ge=1)
    min_subreddit_users: int = Field(3, ge=1)
    start: date | None = Field(None, description="keep records from this day (UTC)")
    end: date | None = Field(None, description="keep records before this day (UTC)")
    val_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.1, ge=0, lt=1)
    inductive_fraction: float = Field(0.1, ge=0, lt=1)
    snippets_per_edge: int = Field(5, ge=1)
    seed: int = 0


class FeaturesConfig(Section):
    text_model: str | None = Field(
        None, description="sentence-transformers path or id; null: the packaged all-MiniLM-L6-v2"
    )
    texts_per_subreddit: int = Field(32, ge=1)
    subreddit_metadata: bool = Field(
        True, description="start a subreddit's text with its title and public description"
    )
    actors: int = Field(1, ge=1)
    num_gpus: float = Field(0, ge=0)
