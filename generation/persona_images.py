"""The user's own images in the persona request (`personas.images: K`).

Up to K of each user's history images, newest first (ties by post and position), read
through `io.history`: an image of a benchmark reference post is never among them. What a
model gets depends on what it can see (`llm.sees_images`):

* a multimodal model (``openai``; ``hf`` where the model is a vision-language model): the
  images themselves, fetched again with the hostile-URL rules (`images.*`), as
  ``ChatRequest.images`` (PNG or JPEG, `media.image_parts`);
* the template backend: the images' colour features by name in the request's inputs
  (``image_colours``), from silver/image_embeddings where they were embedded in the
  colour space, else computed from the fetched bytes; it says them as colour words;
* any other (a text-only ``hf`` model, ``vllm``): nothing, with a note on the console
  and in the stage's details, so a sweep and the profiles that inherit ``images`` keep
  running and its rows stay those of a text-only request.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from contract.stage_io import StageIO

Shown = Literal["parts", "colours"] | None


class UserImages:
    """The images each user's persona request shows, picked once per stage run; fetched
    bytes and features are cached across the configured models."""

    def __init__(self, io: StageIO, users: list[int], k: int):
        self.io = io
        self.k = k
        self.picked = pick(io, users, k)
        self._bytes: dict[str, bytes | None] = {}
        self._parts: dict[int, tuple[tuple[str, bytes], ...]] | None = None
        self._colours: dict[int, list[dict]] | None = None
        self._ids: dict[tuple[str, int], list[str]] = {}  # (mode, user) -> shown images
        # summed over the stage's chunks of users
        seen = io.details.setdefault("persona_images", {"per_user": k, "users": 0, "images": 0})
        seen["users"] += len(self.picked)
        seen["images"] += sum(map(len, self.picked.values()))

    def mode(self, spec) -> Shown:
        """How `spec`'s model is shown the images (see the module's docstring)."""
        from llm import backend_info, sees_images

        if backend_info(spec.backend).template:
            return "colours"
        if sees_images(spec):
            return "parts"
        note = f"{spec.label} cannot see images: personas.images={self.k} not shown to it"
        notes = self.io.details.setdefault("image_notes", [])
        if note not in notes:  # once per stage run, not per chunk of users
            self.io.console.print(f"  [yellow]note[/]: {note}")
            notes.append(note)
        return None

    def parts(self, user: int) -> tuple[tuple[str, bytes], ...]:
        """The user's picked images as (mime, bytes), those that could be fetched."""
        if self._parts is None:
            from media.image_parts import model_ready

            self._parts = {}
            self._fetch([r["image_url"] for rows in self.picked.values() for r in rows])
            for u, rows in self.picked.items():
                got = [(r, self._bytes[r["image_url"]]) for r in rows]
                got = [(r, b) for r, b in got if b is not None]
                self._parts[u] = tuple(model_ready(b) for _, b in got)
                self._ids["parts", u] = [image_key(r) for r, _ in got]
        return self._parts.get(user, ())

    def colours(self, user: int) -> list[dict]:
        """The user's picked images' colour features by name (`media.image_features`)."""
        if self._colours is None:
            from media.image_embed import COLOUR
            from media.image_features import colour_features, named_colours

            self._colours = {}
            self._fetch(
                [
                    r["image_url"]
                    for rows in self.picked.values()
                    for r in rows
                    if r["encoder"] != COLOUR
                ]
            )
            for u, rows in self.picked.items():
                named, ids = [], []
                for r in rows:
                    if r["encoder"] == COLOUR:
                        named.append(named_colours(r["embedding"]))
                    elif self._bytes.get(r["image_url"]) is not None:
                        named.append(named_colours(colour_features(self._bytes[r["image_url"]])))
                    else:
                        continue
                    ids.append(image_key(r))
                self._colours[u], self._ids["colours", u] = named, ids
        return self._colours.get(user, [])

    def ids(self, mode: Shown, user: int) -> list[str]:
        """The images `mode` showed `user` ("post_id:position", newest first): evidence of
        the persona beside the snippets' ids (call after `parts` or `colours`)."""
        return self._ids.get((mode, user), [])

    def _fetch(self, urls: list[str]) -> None:
        """Fetch the URLs not fetched yet with the hostile-URL fetcher (None: refused)."""
        from media.fetch import FetchError, fetch_image

        c = self.io.config.images
        todo = [u for u in dict.fromkeys(urls) if u not in self._bytes]

        def one(url: str) -> bytes | None:
            try:
                return fetch_image(
                    url, c.allow_hosts, timeout=c.timeout_s, max_bytes=c.max_mb << 20
                )
            except FetchError:
                return None

        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(one, todo))
        self._bytes.update(zip(todo, got, strict=True))
        seen = self.io.details["persona_images"]  # images a refetch could not get
        seen["not_fetched"] = seen.get("not_fetched", 0) + sum(b is None for b in got)


def image_key(row: dict) -> str:
    """An image's id among a persona's evidence ids (as `generation.bench.reference_keys`)."""
    return f"{row['post_id']}:{row['position']}"


def pick(io: StageIO, users: list[int], k: int) -> dict[int, list[dict]]:
    """Each of `users`' newest `k` history images that were fetched and embedded
    (silver/image_embeddings ``ok``), newest first, ties by post id and position."""
    keys = ["user_id", "post_id", "position"]
    emb = io.history(
        "silver/image_embeddings", [*keys, "image_url", "status", "encoder", "embedding"]
    )
    emb = emb.filter(
        pc.and_(
            pc.equal(emb["status"], "ok"),
            pc.is_in(emb["user_id"], pa.array(users, emb["user_id"].type)),
        )
    )
    when = io.history("silver/user_images", [*keys, "created_utc"])
    order = (  # a join cannot carry the list column: join the keys and a row number
        emb.select(keys)
        .append_column("row", pa.array(range(emb.num_rows), pa.int64()))
        .join(when, keys, join_type="inner")
        .sort_by(
            [("created_utc", "descending"), ("post_id", "ascending"), ("position", "ascending")]
        )
    )
    out: dict[int, list[dict]] = {}
    for r in emb.drop_columns(["status"]).take(order["row"]).to_pylist():
        mine = out.setdefault(r["user_id"], [])
        if len(mine) < k:
            mine.append(r)
    return out


def with_image_note(messages: list[dict], n: int) -> list[dict]:
    """The persona request's messages with a line saying that `n` of the user's own
    images come with the evidence (none: unchanged)."""
    if not n:
        return messages
    out = [dict(m) for m in messages]
    at = next(i for i, m in enumerate(out) if m.get("role") == "user")
    out[at]["content"] += (
        f"\n\nAttached: {n} image{'s' if n > 1 else ''} this user posted, newest first. Let "
        "their colours, light and subjects inform the visual interests."
    )
    return out
