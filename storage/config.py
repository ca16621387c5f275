"""The lake's config section (`lake`): where it lives and its table format."""

from __future__ import annotations

from typing import Literal

from schemas.config import Section


class LakeConfig(Section):
    root: str = "lake"
    format: Literal["parquet", "delta"] = "parquet"
