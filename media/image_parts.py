"""Fetched images made ready to show a model: PNG or JPEG bytes with their MIME type,
no side over `max_side` (what a multimodal backend puts in a data URI or a processor)."""

from __future__ import annotations

import io

from PIL import Image

MIME = {"PNG": "image/png", "JPEG": "image/jpeg"}
MAX_SIDE = 768  # what VLM servers tile or resize to anyway; keeps requests small


def model_ready(data: bytes, max_side: int = MAX_SIDE) -> tuple[str, bytes]:
    """(mime, bytes): a PNG or JPEG within `max_side` as it came, anything else (GIF,
    WebP, a larger image) re-encoded from its first frame: PNG where it has
    transparency or was lossless, else JPEG."""
    with Image.open(io.BytesIO(data)) as im:
        fmt = im.format or ""
        if fmt in MIME and max(im.size) <= max_side:
            return MIME[fmt], data
        im.seek(0)
        pic = im.convert("RGBA" if _has_alpha(im) else "RGB")
    pic.thumbnail((max_side, max_side))
    out = io.BytesIO()
    if pic.mode == "RGBA" or fmt in ("PNG", "GIF"):
        pic.save(out, format="PNG")
        return MIME["PNG"], out.getvalue()
    pic.save(out, format="JPEG", quality=90)
    return MIME["JPEG"], out.getvalue()


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
