"""Procedural PNGs with a visual taste: palette, saturation, brightness, contrast, grain."""

from __future__ import annotations

import colorsys
import io

import numpy as np
from PIL import Image

#: taste vector layout (also the ground-truth table's `taste` column).
TASTE_FIELDS = ("hue", "hue2", "saturation", "brightness", "contrast", "grain")


def render_png(taste: np.ndarray, rng: np.random.Generator, size: int = 64) -> bytes:
    """A PNG whose colour statistics follow `taste` (values in [0, 1], see TASTE_FIELDS)."""
    hue, hue2, sat, bright, contrast, grain = (float(x) for x in taste)
    y, x = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    angle = rng.uniform(0, np.pi)
    t = (np.cos(angle) * x + np.sin(angle) * y) / (abs(np.cos(angle)) + abs(np.sin(angle)))
    blobs = np.zeros_like(t)
    for _ in range(3):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.35)
        blobs += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
    mix = np.clip(0.6 * t + 0.4 * blobs / blobs.max(), 0, 1)
    c1 = np.array(colorsys.hsv_to_rgb(hue, sat, bright))
    c2 = np.array(colorsys.hsv_to_rgb(hue2, sat, bright))
    rgb = c1 * (1 - mix[..., None]) + c2 * mix[..., None]
    rgb = (rgb - rgb.mean()) * (0.5 + 1.5 * contrast) + rgb.mean()
    rgb += rng.normal(0, 0.25 * grain, rgb.shape)
    arr = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="PNG")
    return buf.getvalue()
