"""Neutral captions of images: ZIPBench's caption-sourced base prompts.

`Captioner` wraps a transformers image-captioning model (BLIP, ViT-GPT2, GIT, any
vision-encoder-decoder); `caption_prompts` turns each benchmark user's captioned reference
images into bench/prompts rows (source "caption") and lists what could not be captioned.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from generation.bench import prompt_id
from schemas.bench import BENCH_PROMPTS


def normalise(text: str) -> str:
    """One neutral line: whitespace collapsed, stripped, the first letter lower-cased."""
    text = " ".join(str(text).split())
    return text[:1].lower() + text[1:]


def _decode(data: bytes):
    """The image in `data` as RGB, or None when it does not decode."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.convert("RGB")
    except Exception:  # Pillow raises many kinds for hostile or truncated payloads
        return None


class Captioner:
    """An image-to-text model loaded with `from_pretrained(path_or_id)`.

    The transformers 5 `pipeline("image-to-text")` task is gone (it redirects to
    "image-text-to-text", which needs a joint processor that vision-encoder-decoder
    checkpoints do not have), so the model, image processor and tokenizer are loaded
    directly and `generate` is called on each batch, as that pipeline did.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        device: str | None = None,
        batch_size: int = 16,
        max_new_tokens: int | None = None,
    ) -> None:
        import torch
        from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

        self.name = str(model)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = max(1, batch_size)
        self.max_new_tokens = max_new_tokens
        self.processor = AutoImageProcessor.from_pretrained(self.name)
        self.tokenizer = AutoTokenizer.from_pretrained(self.name)
        self.model = AutoModelForImageTextToText.from_pretrained(self.name).to(self.device).eval()

    def _generate(self, images: list) -> list[str]:
        import torch

        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]
        kwargs = {} if self.max_new_tokens is None else {"max_new_tokens": self.max_new_tokens}
        with torch.inference_mode():
            ids = self.model.generate(pixel_values=pixels.to(self.device), **kwargs)
        return self.tokenizer.batch_decode(ids, skip_special_tokens=True)

    def caption(self, images: Sequence[bytes]) -> list[str]:
        """One normalised caption per image, in order, in batches of `batch_size`; "" for
        an image that does not decode or gets an empty caption."""
        out = [""] * len(images)
        decoded = [(i, im) for i, data in enumerate(images) if (im := _decode(data)) is not None]
        for start in range(0, len(decoded), self.batch_size):
            chunk = decoded[start : start + self.batch_size]
            texts = self._generate([im for _, im in chunk])
            for (i, _), text in zip(chunk, texts, strict=True):
                out[i] = normalise(text)
        return out


def caption_prompts(
    items: Sequence[tuple[int, str, bytes]], captioner: Captioner, prefix: str = ""
) -> tuple[pa.Table, list[dict], list[dict]]:
    """bench/prompts rows from (user_id, reference "post_id:position", image bytes).

    Returns (prompts, failed, duplicates): one prompt per captioned reference, its id the
    hash of its text (`prefix` + caption) and its post_id the reference's post; `failed`
    lists references without a caption, `duplicates` those whose prompt repeats an earlier
    reference of the same user (a (user, prompt) pair is a key downstream)."""
    captions = captioner.caption([data for _, _, data in items])
    rows, failed, duplicates, seen = [], [], [], set()
    for (user, ref, _), text in zip(items, captions, strict=True):
        if not text:
            failed.append({"user_id": user, "reference": ref, "reason": "no_caption"})
            continue
        prompt = " ".join(f"{prefix} {text}".split())
        pid = prompt_id(prompt)
        if (user, pid) in seen:
            duplicates.append({"user_id": user, "reference": ref, "prompt_id": pid})
            continue
        seen.add((user, pid))
        rows.append(
            {
                "prompt_id": pid,
                "user_id": user,
                "prompt": prompt,
                "source": "caption",
                "post_id": ref.rsplit(":", 1)[0],
            }
        )
    return pa.Table.from_pylist(rows, schema=BENCH_PROMPTS), failed, duplicates
