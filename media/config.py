"""The `images` config section: fetching users' posted images (the hostile-URL fetcher)
and embedding them (the image feature spaces)."""

from __future__ import annotations

from pydantic import Field

from schemas.config import Section


class ImagesConfig(Section):
    model: str | None = Field(None, description="CLIP path or id; null: colour features")
    allow_hosts: list[str] = Field(
        default_factory=list, description="hosts, IPs or CIDRs allowed despite being private"
    )
    fetch_tasks: int = Field(4, ge=1)
    embed_actors: int = Field(1, ge=1)
    num_gpus: float = Field(0, ge=0)
    batch_size: int = Field(64, ge=1)
    timeout_s: float = Field(10.0, gt=0)
    max_mb: int = Field(20, ge=1)
    retries: int = Field(2, ge=0)
