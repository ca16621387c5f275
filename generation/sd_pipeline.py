"""Pieces of a Stable Diffusion pipeline folder the project builds itself (the smoke model of
`generation.smoke_model`; the tests' tiny random pipeline, `tests/tiny_diffusion.py`): a
byte-level CLIP BPE vocabulary, and the pipeline saved as an ordinary diffusers folder
(`DiffusionPipeline.from_pretrained` loads it) with a marker file, swapped in whole."""

from __future__ import annotations

import json
from pathlib import Path


def clip_tokenizer_files(folder: Path, words: list[str] | tuple[str, ...] = ()) -> None:
    """A byte-level CLIP BPE vocabulary (`vocab.json`, `merges.txt`): every character is a
    token, and each of `words` (lower-case) becomes one whole-word token through merges
    that build it left to right (CLIP's BPE: the last piece carries ``</w>``)."""
    # GPT-2/CLIP byte-level alphabet: printable bytes map to themselves, the rest to 256+
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    extra = [b for b in range(256) if b not in printable]
    chars = [chr(b) for b in printable] + [chr(256 + i) for i in range(len(extra))]
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    merges: dict[str, None] = {}
    for word in words:
        if len(word) < 2 or not word.isascii() or not word.isalnum():
            continue
        pieces = [*word[:-1], word[-1] + "</w>"]
        merged = pieces[0]
        for piece in pieces[1:]:
            merges[f"{merged} {piece}"] = None
            merged += piece
            vocab.setdefault(merged, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(m + "\n" for m in merges))


def save_sd_pipeline(parts: dict, tmp: Path, out: Path, marker: str, info: dict) -> None:
    """A `StableDiffusionPipeline` of `parts` (vae, text_encoder, tokenizer, unet,
    scheduler; no safety checker) saved into `tmp` with the marker file `marker` holding
    `info`, the tokenizer's build files (`tmp/tok`) removed, then swapped in as `out`."""
    import shutil

    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(
        **parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )
    pipe.save_pretrained(tmp)
    (tmp / marker).write_text(json.dumps(info))
    shutil.rmtree(tmp / "tok", ignore_errors=True)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
