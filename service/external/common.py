"""What the external benchmarks' runs share (`run`: user histories, `votes`: RapidData's
pairs): their lake under ``external/<name>/``, content digests, image embeddings, and
the LLM-judge columns of rows the judge does not see."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from schemas.tables import EXTERNAL
from storage.lake import Lake

#: the lake folder every external benchmark's tables go under: external/<name>/
PREFIX = EXTERNAL
#: what an LLM-judge column says on these rows
JUDGE_SKIPPED = "the LLM judge does not run on external benchmarks"


def external_lake(cfg: Any, name: str) -> Lake:
    """The lake under ``<lake.root>/external/<name>``: the bench tables' own prefix."""
    return Lake(Path(cfg.lake.root) / PREFIX / name, cfg.lake.format)


def digest(*parts: object) -> str:
    """A short content key of the parts (request ids, image names)."""
    return hashlib.sha1("\0".join(map(str, parts)).encode()).hexdigest()[:20]


def embed(encoder: str, payloads: list[bytes]) -> np.ndarray:
    """Image payloads in a feature space; (0, 0) for none."""
    from media.image_embed import embed_payloads

    return embed_payloads(encoder, payloads) if payloads else np.zeros((0, 0), np.float32)


def skipped_judge(key: str) -> dict:
    """The LLM-judge columns of a row the judge did not see (as ``judge.backend: none``)."""
    return {
        "judge_score": None,
        "judge_reason": None,
        "llm": "none",
        "template": False,
        "status": "skipped",
        "reason": JUDGE_SKIPPED,
        "prompt_version": "-",
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "attempts": 0,
        "seconds": 0.0,
        "request_id": digest("judge", key),
    }
