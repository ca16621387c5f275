"""Image encoders: the weight-free colour/aesthetic features (embedded default) and CLIP.

Both map image bytes to float32 vectors; the colour encoder's dimensions are named in
`COLOUR_FEATURES` so reports and tests can read them.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

HUE_BINS = 12
COLOUR_FEATURES = [
    "mean_r",
    "mean_g",
    "mean_b",
    "std_r",
    "std_g",
    "std_b",
    "brightness",
    "saturation",
    "contrast",
    "colourfulness",
    "sharpness",
    "grain",
] + [f"hue_{i}" for i in range(HUE_BINS)]
_SIDE = 128


def _rgb(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGB")
        im.thumbnail((_SIDE, _SIDE))
        return np.asarray(im, dtype=np.float32) / 255.0


def colour_features(data: bytes) -> np.ndarray:
    """Weight-free features of one image (see COLOUR_FEATURES), float32."""
    rgb = _rgb(data)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mx, mn = rgb.max(-1), rgb.min(-1)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0.0)
    lum = 0.299 * r + 0.587 * g + 0.114 * b
    rg, yb = r - g, 0.5 * (r + g) - b
    colourful = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    lap = (
        (-4 * lum[1:-1, 1:-1] + lum[:-2, 1:-1] + lum[2:, 1:-1] + lum[1:-1, :-2] + lum[1:-1, 2:])
        if min(lum.shape) > 2
        else np.zeros((1, 1))
    )
    blur = lum.copy()
    if min(lum.shape) > 2:
        blur[1:-1, 1:-1] = (
            lum[:-2, 1:-1] + lum[2:, 1:-1] + lum[1:-1, :-2] + lum[1:-1, 2:] + lum[1:-1, 1:-1]
        ) / 5
    grain = np.abs(lum - blur).mean()
    delta = np.maximum(mx - mn, 1e-6)
    hue = (
        np.select(
            [mx == r, mx == g],
            [((g - b) / delta) % 6, (b - r) / delta + 2],
            (r - g) / delta + 4,
        )
        / 6.0
    )
    hist, _ = np.histogram(hue, bins=HUE_BINS, range=(0, 1), weights=sat)
    hist = hist / max(hist.sum(), 1e-6)
    head = [
        r.mean(),
        g.mean(),
        b.mean(),
        r.std(),
        g.std(),
        b.std(),
        mx.mean(),
        sat.mean(),
        lum.std(),
        colourful,
        np.sqrt(lap.var()),
        grain,
    ]
    return np.concatenate([np.asarray(head), hist]).astype(np.float32)


def named_colours(vector, digits: int = 4) -> dict:
    """A colour-feature vector (`COLOUR_FEATURES` order) by name, rounded: the scalar
    features, and ``hue`` the saturation-weighted hue histogram (`llm.colour_words`
    reads it)."""
    v = [round(float(x), digits) for x in vector]
    if len(v) != len(COLOUR_FEATURES):
        raise ValueError(f"a colour-feature vector has {len(COLOUR_FEATURES)} values, not {len(v)}")
    head = len(COLOUR_FEATURES) - HUE_BINS
    return dict(zip(COLOUR_FEATURES[:head], v[:head], strict=True)) | {"hue": v[head:]}


class ClipImageEncoder:
    """CLIP image embeddings (L2-normalised) through transformers, any path or hub id."""

    def __init__(self, model: str, device: str | None = None, batch_size: int = 32):
        import torch
        from transformers import CLIPImageProcessor, CLIPModel

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = CLIPModel.from_pretrained(model).to(self.device).eval()
        self.processor = CLIPImageProcessor.from_pretrained(model)
        self.batch_size = batch_size

    def __call__(self, images: list[bytes]) -> np.ndarray:
        import torch

        out = []
        for i in range(0, len(images), self.batch_size):
            pics = [
                Image.open(io.BytesIO(d)).convert("RGB") for d in images[i : i + self.batch_size]
            ]
            inputs = self.processor(images=pics, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                emb = self.model.get_image_features(**inputs)
            if not isinstance(emb, torch.Tensor):  # newer transformers return an output object
                emb = emb.pooler_output
            out.append(torch.nn.functional.normalize(emb, dim=-1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)
