"""What `zipp study create|export|results` do, apart from printing (jobs.cli prints)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pandas as pd

from service.cold_start import COLD_METHODS
from service.study.results import results, to_lake, vote_rows, write_votes
from service.study.server import open_store


def read_prompt_file(path: str | Path) -> list[str]:
    """Prompts, one a line (blank lines and # comments skipped)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--prompts: no file at {p}")
    lines = [" ".join(line.split()) for line in p.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def invite_base(cfg: Any) -> str:
    """The base of invite links: `study.public_url`, or the server's own address."""
    return (cfg.study.public_url or f"http://{cfg.study.host}:{cfg.study.port}").rstrip("/")


def create(
    cfg: Any, name: str, methods: list[str], prompts: Path, raters: int, votes: int | None
) -> tuple[str, list[str], dict]:
    """(study id, invite links, the study): a new study and `raters` invites. Votes per
    rater default to every prompt × method pair once. ValueError saying what is wrong."""
    texts = read_prompt_file(prompts)
    if votes is None:
        pairs = len(list(itertools.combinations({m.strip() for m in methods if m.strip()}, 2)))
        votes = max(1, len(texts) * pairs)
    store = open_store(cfg)
    study, codes = store.create_study(name, methods, texts, votes, raters, COLD_METHODS)
    base = invite_base(cfg)
    return study, [f"{base}/i/{c}" for c in codes], store.study(study)


def export(cfg: Any, out: Path | None, lake: bool, study: str | None) -> tuple[int, list[str]]:
    """(votes, where they went): a CSV or Parquet file and/or the lake's
    `bench/study_votes` (every study's votes, or one's)."""
    store = open_store(cfg)
    if study and store.study(study) is None:
        raise ValueError(f"no study {study!r}")
    table = vote_rows(store.db, study)
    wrote = []
    if out is not None:
        wrote.append(str(write_votes(table, out)))
    if lake:
        to_lake(table, cfg.lake.root, cfg.lake.format)
        wrote.append(f"{Path(cfg.lake.root) / 'bench/study_votes'}")
    return table.num_rows, wrote


def win_table(cfg: Any, study: str | None) -> tuple[pd.DataFrame, list[dict]]:
    """(win rates per study and method pair, each study's progress)."""
    store = open_store(cfg)
    studies = [s for s in store.studies() if study in (None, s["id"])]
    if study and not studies:
        raise ValueError(f"no study {study!r}")
    progress = [{"study": s["id"], "name": s["name"]} | store.progress(s["id"]) for s in studies]
    return results(store.db, study), progress
