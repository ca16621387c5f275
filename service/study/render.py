"""What the study's jobs do: a rater's persona from their survey through the cold start
(`service.cold_start.PersonaEngine`, the same path as `zipp persona --new`), and each of
their images: the prompt rewritten by the method (`PersonaEngine.rewrite`; `viper` by
the cold start's own preferences), rendered by the configured diffusion model (the
smoke model on the embedded default) from a seed that every method of the same rater and
prompt shares, stored as a PNG under the study's folder."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

from service.cold_start import NewUser, PersonaEngine
from service.images import ImageRenderer
from service.study.store import Store


def image_seed(rater: str, position: int) -> int:
    """The seed of a rater's image of a prompt: the same for every method."""
    return int(hashlib.sha256(f"{rater}:{position}".encode()).hexdigest()[:8], 16)


def stored_user(survey: dict) -> NewUser:
    """The cold start's input kept with the survey answers when they were given."""
    user = survey["persona_input"]
    return NewUser(
        subreddits=tuple(user["subreddits"]),
        comments=tuple((s, t) for s, t in user["comments"]),
    )


class StudyRenderer:
    """The persona engine and the diffusion pipeline, each loaded once, on first use."""

    def __init__(self, cfg: Any, store: Store, engine: PersonaEngine | None = None):
        self.cfg = cfg
        self.store = store
        self._engine = engine
        self._engine_lock = threading.Lock()
        self.images = ImageRenderer(cfg)  # the service's: loaded once, one call at a time
        #: rater -> (their cold-start input, viper's likes and dislikes): one preferences
        #: call per rater, not one per viper image; dropped when the rater deletes
        self._preferences: dict[str, tuple[NewUser, tuple[list[str], list[str]]]] = {}

    @property
    def engine(self) -> PersonaEngine:
        with self._engine_lock:
            if self._engine is None:
                self._engine = PersonaEngine(self.cfg)
            return self._engine

    def persona(self, rater: str) -> dict:
        """The rater's persona from their survey; ValueError when the LLM failed."""
        survey = self.store.survey(rater)
        if survey is None:
            raise ValueError("no survey answers (deleted?)")
        out = self.engine.persona(stored_user(survey))
        if out.persona is None:
            raise ValueError(f"the persona failed: {out.reason}")
        return out.persona

    def preferences(self, rater: str, user: NewUser) -> tuple[list[str], list[str]]:
        """viper's likes and dislikes for the rater, from the cold start, once per input."""
        kept = self._preferences.get(rater)
        if kept is None or kept[0] != user:
            kept = (user, self.engine.preferences(user))
            if self.store.survey(rater) is not None:  # not if they deleted meanwhile
                self._preferences[rater] = kept
        return kept[1]

    def forget(self, rater: str) -> None:
        """Drop what was derived from a rater's answers (their deletion)."""
        self._preferences.pop(rater, None)

    def image(self, rater: str, image: str) -> tuple[str, str | None, str, Path]:
        """(rewritten prompt, negative prompt, path under the study folder, file) of one
        of the rater's images, rendered and written."""
        row = self.store.db.one(
            "SELECT i.position, i.method, r.study, p.text FROM images i "
            "JOIN raters r ON r.id = i.rater "
            "JOIN prompts p ON p.study = r.study AND p.position = i.position "
            "WHERE i.id = ? AND i.rater = ?",
            (image, rater),
        )
        if row is None:
            raise ValueError("no such image (deleted?)")
        method, base = row["method"], row["text"]
        if method == "viper":  # its likes and dislikes: the cold start's preferences
            survey = self.store.survey(rater)
            if survey is None:
                raise ValueError("no survey answers (deleted?)")
            likes, dislikes = self.preferences(rater, stored_user(survey))
            prompt, negative = self.engine.rewrite(None, base, "viper", likes, dislikes)
        else:
            prompt, negative = self.engine.rewrite(self.store.persona(rater), base, method)
        png = self.images.png(prompt, negative, image_seed(rater, row["position"]))
        folder = self.store.image_folder(row["study"], rater)
        folder.mkdir(parents=True, exist_ok=True)
        file = folder / f"{image}.png"
        tmp = file.with_suffix(".tmp")
        tmp.write_bytes(png)
        tmp.replace(file)
        return prompt, negative, file.relative_to(self.store.db.folder).as_posix(), file
