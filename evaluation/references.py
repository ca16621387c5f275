"""What the scorers score against: the lake's generated images (`media_file`), each
benchmark user's held-out reference images (bench/references, embedded in
silver/image_embeddings) and the agreement set drawn from them (other benchmark users'
reference images, fetched through the hostile-URL fetcher for a multimodal judge)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contract.history import REFERENCES, held_out
from contract.stage_io import StageIO
from media.image_embed import COLOUR  # the weight-free encoder
from schemas.tables import MEDIA

EMBEDDINGS = "silver/image_embeddings"


def media_file(io: StageIO, rel: str) -> Path:
    """A lake image (``media/<2 hex>/<sha256>.png``, relative to the lake root) through
    the stage's declared ``media`` folder."""
    parts = Path(rel).parts
    if not parts or parts[0] != MEDIA or ".." in parts:
        raise ValueError(f"not a lake media path: {rel!r}")
    return io.path(MEDIA).joinpath(*parts[1:])


def reference_images(io: StageIO, emb: pa.Table | None = None) -> tuple[list[dict], str]:
    """Every embedded image of the benchmark's held-out reference posts (bench/references
    x silver/image_embeddings), as rows {user_id, post_id, position, image_url,
    embedding} sorted by user, post and position, and the encoder that made them."""
    if emb is None:
        emb = io.read(EMBEDDINGS, ["post_id", "position", "status", "encoder", "embedding"])
    emb = emb.filter(pc.equal(emb["status"], "ok"))
    encoder = emb["encoder"][0].as_py() if emb.num_rows else COLOUR
    refs = io.read(REFERENCES, ["user_id", "post_id", "position", "image_url"])
    emb = emb.filter(held_out(emb, EMBEDDINGS, pc.unique(refs["post_id"])))  # references only
    by_key = {
        (p, q): v
        for p, q, v in zip(
            emb["post_id"].to_pylist(),
            emb["position"].to_pylist(),
            emb["embedding"].to_pylist(),
            strict=True,
        )
        if v is not None
    }
    refs = refs.sort_by(
        [("user_id", "ascending"), ("post_id", "ascending"), ("position", "ascending")]
    )
    rows = [
        r | {"embedding": by_key[(r["post_id"], r["position"])]}
        for r in refs.to_pylist()
        if (r["post_id"], r["position"]) in by_key
    ]
    return rows, encoder


def reference_vectors(
    io: StageIO, emb: pa.Table | None = None
) -> tuple[dict[int, np.ndarray], str]:
    """Each benchmark user's reference-image embeddings (every image of their held-out
    reference posts, from bench/references, embedded in silver/image_embeddings) and the
    encoder that made them. A user without an embedded reference gets a (0, 0) array."""
    rows, encoder = reference_images(io, emb)
    return _by_user(io, rows), encoder


def _by_user(io: StageIO, rows: list[dict]) -> dict[int, np.ndarray]:
    """`reference_images` rows -> each benchmark user's embeddings ((0, 0) when none)."""
    by_user: dict[int, list] = {
        u: [] for u in io.read("bench/users", ["user_id"])["user_id"].to_pylist()
    }
    for r in rows:
        by_user.setdefault(r["user_id"], []).append(r["embedding"])
    empty = np.zeros((0, 0), np.float32)
    return {u: np.asarray(v, np.float32) if v else empty for u, v in by_user.items()}


@dataclass
class References:
    """The score stage's view of the references: silver/image_embeddings as read (the
    preference judge's history comes from it too), the reference image rows
    (`reference_images`), each benchmark user's reference embeddings (`reference_vectors`)
    and the encoder that made them."""

    embeddings: pa.Table
    rows: list[dict]
    vectors: dict[int, np.ndarray]
    encoder: str

    def of(self, user: int) -> np.ndarray:
        """A user's reference embeddings ((0, 0) for a user with none)."""
        return self.vectors.get(user, np.zeros((0, 0), np.float32))


def load_references(io: StageIO) -> References:
    """silver/image_embeddings (every user's rows) + bench/references + bench/users ->
    `References`."""
    emb = io.read(EMBEDDINGS, ["user_id", "post_id", "position", "status", "encoder", "embedding"])
    rows, encoder = reference_images(io, emb)
    return References(emb, rows, _by_user(io, rows), encoder)


def agreement_pairs(refs: list[dict], users: list[int], n: int, seed: int) -> list[tuple]:
    """The agreement set: for each benchmark user, `n` of the OTHER benchmark users'
    reference images (a seeded digest of stable keys: the users' reference post ids, the
    image's post id and position), as (user_id, reference row)."""
    if n <= 0:
        return []
    keys: dict[int, list[str]] = defaultdict(list)
    for r in refs:
        keys[r["user_id"]].append(r["post_id"])
    out = []
    for u in users:
        key = ",".join(sorted(set(keys.get(u, [])))) or str(u)
        rank = sorted(
            (hashlib.sha1(f"{seed}\0{key}\0{r['post_id']}\0{r['position']}".encode()).digest(), i)
            for i, r in enumerate(refs)
            if r["user_id"] != u
        )
        out += [(u, refs[i]) for _, i in rank[:n]]
    return out


def fetch_pngs(io: StageIO, urls: list[str]) -> list[tuple[bytes | None, str | None]]:
    """Posted images' bytes for a multimodal judge, through the hostile-URL fetcher."""
    from concurrent.futures import ThreadPoolExecutor

    from media.fetch import FetchError, fetch_image

    c = io.config.images

    def one(url: str) -> tuple[bytes | None, str | None]:
        try:
            return fetch_image(
                url, c.allow_hosts, timeout=c.timeout_s, max_bytes=c.max_mb << 20
            ), None
        except FetchError as e:
            return None, f"fetch failed: {e.reason}: {e}"

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, urls))
