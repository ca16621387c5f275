"""How a subreddit's name is written in text: `readable`, the form persona interests use
(the template backend writes it; exports match it when they scrub rare communities)."""

from __future__ import annotations

import re


def readable(subreddit: str) -> str:
    """`AnalogPhotographyClub` -> `analog photography club`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", subreddit).lower()
