"""Rendering for `POST /v1/images`: the configured diffusion model (`diffusion.model`, or
on the embedded default the smoke model stage `smoke` trained on this lake), loaded once
per process on first use, one image per call, as PNG bytes."""

from __future__ import annotations

import threading
from typing import Any

from contract.stage_io import TableAccess
from schemas.tables import SMOKE_MODEL


class ImageRenderer:
    """The diffusion pipeline, loaded lazily; callers get PNG bytes (one at a time)."""

    def __init__(self, cfg: Any):
        self.cfg = cfg
        self.tables = TableAccess(
            stage="serve",
            root=str(cfg.lake.root),
            format=cfg.lake.format,
            inputs=frozenset(),
            folders=frozenset({SMOKE_MODEL}),
        )
        self._pipe = None
        self._spec = None
        self._lock = threading.Lock()

    def model(self) -> str | None:
        """The pipeline's path or id; None when none is configured or trained."""
        from generation.smoke_model import marker
        from generation.stages.smoke import PIPELINE

        if self.cfg.diffusion.model:
            return self.cfg.diffusion.model
        path = self.tables.path(SMOKE_MODEL) / PIPELINE
        return str(path) if marker(path) is not None else None

    def missing(self) -> str:
        """Why there is no model (what a 503 says)."""
        return (
            "no diffusion model: set diffusion.model, or run stage smoke to train the "
            "embedded default's smoke model on this lake"
        )

    def png(self, prompt: str, negative: str | None, seed: int) -> bytes:
        """One image of `prompt` from noise seeded by `seed`; FileNotFoundError when no
        model is there."""
        from generation.diffusion import RenderJob, load_pipeline, png_bytes, render, render_spec

        with self._lock:  # a diffusers pipeline is not thread-safe
            if self._pipe is None:
                model = self.model()
                if model is None:
                    raise FileNotFoundError(self.missing())
                self._spec = render_spec(self.cfg.diffusion, model, batch_size=1)
                self._pipe = load_pipeline(self._spec)
            job = RenderJob("serve", prompt, negative, seed)
            return png_bytes(render(self._pipe, self._spec, [job])[0])
