"""The `export` config section: pseudonymised exports (`zipp export`)."""

from __future__ import annotations

from pydantic import Field

from schemas.config import Section


class ExportConfig(Section):
    min_community_users: int = Field(
        50,
        ge=1,
        description="in pseudonymised exports, subreddits with fewer users are replaced by "
        "their community label",
    )
    key_env: str = Field(
        "ZIPP_PSEUDONYM_KEY", description="environment variable holding the pseudonym key"
    )
