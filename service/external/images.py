"""An external benchmark's images as bytes: carried in its files, a file inside its
folder, or a URL fetched with the hostile-URL rules (`media.fetch.fetch_image`); one that
cannot be had (an expired signed link, a 404, not an image) is a reason, never an error."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image


def image_bytes(item: dict, images_cfg: Any) -> tuple[bytes | None, str | None]:
    """(the item's image bytes, None) or (None, why not) for an item with `image`,
    `image_path` or `image_url`; (None, "no image") when it has none."""
    from media.fetch import FetchError, fetch_image

    cap = images_cfg.max_mb << 20
    try:
        if item.get("image"):
            data = item["image"]
        elif item.get("image_path"):
            path = Path(item["image_path"])
            if path.stat().st_size > cap:
                return None, "too large"
            data = path.read_bytes()
        elif item.get("image_url"):
            data = fetch_image(
                item["image_url"],
                images_cfg.allow_hosts,
                timeout=images_cfg.timeout_s,
                max_bytes=cap,
                retries=images_cfg.retries,
            )
        else:
            return None, "no image"
    except FetchError as e:
        return None, f"fetch failed: {e.reason}"
    except OSError as e:
        return None, f"unreadable: {type(e).__name__}"
    if len(data) > cap:
        return None, "too large"
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
    except Exception:  # Pillow raises many kinds on a bad payload
        return None, "not an image"
    return data, None


def all_bytes(items: list[dict], images_cfg: Any) -> list[tuple[bytes | None, str | None]]:
    """`image_bytes` of each item, fetched `images_cfg.fetch_tasks` at a time."""
    with ThreadPoolExecutor(max(1, images_cfg.fetch_tasks)) as pool:
        return list(pool.map(lambda i: image_bytes(i, images_cfg), items))
