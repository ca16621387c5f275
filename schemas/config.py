"""What every package's config section shares: the `Section` base (an unknown key is an
error) and `ConfigError` (one line, naming the key).

Each package defines the sections it reads in its own ``config.py`` (``engines.config``,
``graph.config``, ``llm.config``...); ``jobs.config`` composes them and loads profiles.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigError(ValueError):
    """A configuration problem, with the offending key in the message."""


class Section(BaseModel):
    """A config section: typed keys with defaults; an unknown key is an error."""

    model_config = ConfigDict(extra="forbid")
