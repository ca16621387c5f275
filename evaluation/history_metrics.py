"""Pigeon's history metrics for stage `score`: how close a generated image is to what the
user posted before, in every image feature space the scorer has.

* ``clip_history``: history CLIP-I, the cosine ×100 of the image to the mean of the user's
  history image embeddings, in the lake's space (silver/image_embeddings: the colour
  features or CLIP);
* ``dino_history``: the same in the second space, EfficientNet-Lite0's pooled ImageNet
  features (`media.image_embed.EFFNET`, the DINO-style score), the history images fetched
  again with the hostile-URL fetcher;
* ``dino_ref``: the DINO-style score vs the user's held-out references (CLIPScore's
  rule, mean of the clipped cosines ×100), the counterpart of ``clip_ref``.

History is silver/image_embeddings' history view (`contract.history.without_held_out`):
never an image of a held-out reference post. A user's history is their first
`judge.history_images` embedded images (post, position order), the same set in both
spaces (those of them that could be fetched, in the second).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contract.history import REFERENCES, without_held_out
from contract.stage_io import StageIO
from evaluation.references import EMBEDDINGS, References, fetch_pngs
from evaluation.stats import clip_score_to_set
from media.image_embed import EFFNET, embed_payloads

#: the columns this module adds to bench/scores
COLUMNS = ("clip_history", "dino_ref", "dino_history", "history_images")


def history_clip_i(vec: np.ndarray, history: np.ndarray) -> float | None:
    """Cosine ×100 of one embedding to the mean of a history set (None for no history)."""
    if not len(history):
        return None
    centre = np.asarray(history, np.float64).mean(axis=0)
    v = np.asarray(vec, np.float64)
    denom = np.linalg.norm(centre) * np.linalg.norm(v)
    return float(100.0 * (centre @ v) / denom) if denom > 0 else 0.0


def history_rows(embeddings: pa.Table, references: pa.Table, cap: int) -> dict[int, list[dict]]:
    """Per user, their first `cap` ``ok`` history images (held-out reference posts
    removed, every image of them) in post, position order: {post_id, position,
    image_url, embedding}."""
    t = without_held_out(embeddings, EMBEDDINGS, references)
    t = t.filter(pc.equal(t["status"], "ok"))
    t = t.sort_by([("user_id", "ascending"), ("post_id", "ascending"), ("position", "ascending")])
    out: dict[int, list[dict]] = {}
    for r in t.to_pylist():
        rows = out.setdefault(r["user_id"], [])
        if r["embedding"] is not None and len(rows) < cap:
            rows.append(r)
    return out


@dataclass
class HistorySpaces:
    """Each user's history in the lake space and in the DINO-style space, and their
    references in the DINO-style space ((0, d) arrays when none); `failed` counts the
    images that could not be fetched or embedded again."""

    lake: dict[int, np.ndarray] = field(default_factory=dict)
    dino: dict[int, np.ndarray] = field(default_factory=dict)
    dino_refs: dict[int, np.ndarray] = field(default_factory=dict)
    failed: int = 0


def _embed_each(pngs: list[bytes]) -> list[np.ndarray | None]:
    """PNGs in the DINO-style space, in one batch; on a bad image, one at a time (an
    undecodable image is a failed one, never a failed stage)."""
    try:
        return list(embed_payloads(EFFNET, pngs))
    except Exception:
        out: list[np.ndarray | None] = []
        for p in pngs:
            try:
                out.append(embed_payloads(EFFNET, [p])[0])
            except Exception:
                out.append(None)
        return out


def _dino_by_user(io: StageIO, rows: dict[int, list[dict]]) -> tuple[dict, int]:
    """Fetch each user's rows' images again and embed them in the DINO-style space;
    (embeddings by user, images that could not be fetched or embedded)."""
    flat = [(u, r["image_url"]) for u, rs in rows.items() for r in rs]
    got = fetch_pngs(io, [url for _, url in flat]) if flat else []
    ok = [(u, png) for (u, _), (png, _why) in zip(flat, got, strict=True) if png]
    vecs = _embed_each([png for _, png in ok]) if ok else []
    by_user: dict[int, list[np.ndarray]] = {u: [] for u in rows}
    for (u, _), v in zip(ok, vecs, strict=True):
        if v is not None:
            by_user[u].append(v)
    done = sum(map(len, by_user.values()))
    return {u: np.asarray(v, np.float32) for u, v in by_user.items()}, len(flat) - done


def load_spaces(io: StageIO, refs: References, users: set[int]) -> HistorySpaces:
    """The `users`' histories (`history_rows`, `judge.history_images` each) in both
    spaces and their references in the DINO-style space (`judge.dino`: false leaves the
    DINO-style ones empty)."""
    j = io.config.judge
    cols = ["user_id", "post_id", "position", "status", "image_url", "embedding"]
    emb = io.read(EMBEDDINGS, cols)
    emb = emb.filter(
        pc.is_in(emb["user_id"], pa.array(sorted(users), emb.schema.field("user_id").type))
    )
    rows = history_rows(emb, io.read(REFERENCES, ["user_id", "post_id"]), j.history_images)
    out = HistorySpaces(
        lake={u: np.asarray([r["embedding"] for r in rs], np.float32) for u, rs in rows.items()}
    )
    if j.dino:
        out.dino, failed_h = _dino_by_user(io, rows)
        ref_rows: dict[int, list[dict]] = {}
        for r in refs.rows:
            if r["user_id"] in users:
                ref_rows.setdefault(r["user_id"], []).append(r)
        out.dino_refs, failed_r = _dino_by_user(io, ref_rows)
        out.failed = failed_h + failed_r
    return out


def history_scores(
    spaces: HistorySpaces, user: int, vec: np.ndarray, dino_vec: np.ndarray | None
) -> dict:
    """One image's history columns (`COLUMNS`): None where its user has no history
    (or no reference) in that space, or the DINO-style space is off."""
    lake = spaces.lake.get(user, np.zeros((0, 0)))
    dino = spaces.dino.get(user, np.zeros((0, 0)))
    dref = spaces.dino_refs.get(user, np.zeros((0, 0)))
    on = dino_vec is not None
    return {
        "clip_history": history_clip_i(vec, lake),
        "dino_ref": clip_score_to_set(dino_vec, dref) if on and len(dref) else None,
        "dino_history": history_clip_i(dino_vec, dino) if on else None,
        "history_images": int(len(lake)),
    }


def score_history(
    io: StageIO, refs: References, users: list[int], payloads: list[bytes], vecs: np.ndarray
) -> list[dict]:
    """The history columns of each made image (its user, its PNG, its lake-space
    embedding); the stage's details get the images per space and the failed refetches."""
    if not users:
        return []
    spaces = load_spaces(io, refs, set(users))
    dino = embed_payloads(EFFNET, payloads) if io.config.judge.dino else [None] * len(users)
    io.details["history_metrics"] = {
        "history_images": io.config.judge.history_images,
        "dino_space": EFFNET if io.config.judge.dino else None,
        "users_with_history": sum(1 for v in spaces.lake.values() if len(v)),
        "refetch_failed": spaces.failed,
    }
    return [history_scores(spaces, u, v, d) for u, v, d in zip(users, vecs, dino, strict=True)]
