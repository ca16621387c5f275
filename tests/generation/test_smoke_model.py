"""The embedded default's smoke model: a word-level CLIP tokenizer, a training run that
is seeded, a saved diffusers folder loaded through `from_pretrained` whose images follow
their prompt's words, and the community check's arithmetic."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
from PIL import Image
from transformers import CLIPTokenizer

from generation.diffusion import RenderJob, RenderSpec, load_pipeline, render
from generation.sd_pipeline import clip_tokenizer_files
from generation.smoke_model import (
    MARKER,
    SmokeSpec,
    distinctive_words,
    marker,
    nearest_group_ranks,
    recaption,
    train_smoke_pipeline,
    vocabulary,
)

COLOURS = {"crimson": (220, 30, 40), "azure": (30, 60, 220)}


def _png(rgb: tuple[int, int, int], rng: np.random.Generator) -> bytes:
    arr = np.clip(np.array(rgb) + rng.normal(0, 12, (32, 32, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def _data(n: int = 48) -> tuple[list[bytes], list[str]]:
    """Images of two colours, each titled with its colour word among shared filler."""
    rng = np.random.default_rng(0)
    images, titles = [], []
    for i in range(n):
        word = list(COLOURS)[i % 2]
        images.append(_png(COLOURS[word], rng))
        titles.append(f"my {word} picture of the day {i % 5}")
    return images, titles


def test_titles_words_become_whole_tokens(tmp_path):
    words = vocabulary(["Kodak portra film", "kodak film again", "once"], 10)
    assert words == ["film", "kodak"]  # seen twice or more, most frequent first
    clip_tokenizer_files(tmp_path, [*words, "portra"])
    tok = CLIPTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    pieces = tok.convert_ids_to_tokens(tok("a Kodak portra film, filmy").input_ids)
    assert pieces[1:6] == ["a</w>", "kodak</w>", "portra</w>", "film</w>", ",</w>"]
    assert "filmy</w>" not in pieces  # an unknown word falls back to pieces


def test_a_caption_adds_the_images_own_colour_words():
    rng = np.random.default_rng(1)
    azure = recaption("my picture", _png(COLOURS["azure"], rng))
    crimson = recaption("", _png(COLOURS["crimson"], rng))
    assert azure.startswith("my picture, ") and "cool blue tones" in azure
    assert crimson.startswith("rich red tones")  # no title: the colour words alone
    grey = recaption("a grey day", _png((128, 128, 128), rng))
    assert "neutral grey tones" in grey and "blue" not in grey and "red" not in grey


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    images, titles = _data()
    out = tmp_path_factory.mktemp("smoke") / "pipeline"
    spec = SmokeSpec(vocab=50, vae_steps=60, steps=150, batch_size=16, lr=2e-3)
    record = train_smoke_pipeline(images, titles, spec, out, key="k1")
    return out, record, spec


def test_the_model_is_a_diffusers_folder_with_its_marker(trained):
    out, record, _ = trained
    assert (out / "model_index.json").is_file() and (out / "unet").is_dir()
    assert marker(out)["key"] == "k1" and json.loads((out / MARKER).read_text())["images"] == 48
    assert len(record["denoiser_loss"]) == 150
    assert np.mean(record["denoiser_loss"][-30:]) < np.mean(record["denoiser_loss"][:30])


def test_images_follow_the_prompt_words(trained):
    """Loaded like any pipeline, the same seeds under 'crimson' come out redder than
    under 'azure' (what the training data pairs those words with)."""
    out, _, _ = trained
    spec = RenderSpec(model=str(out), steps=8, guidance_scale=4.0, batch_size=8)
    pipe = load_pipeline(spec)
    redness = {}
    for word in COLOURS:
        jobs = [RenderJob(f"{word}{s}", f"a {word} picture", None, s) for s in range(6)]
        arr = np.stack([np.asarray(im, np.float32) for im in render(pipe, spec, jobs)])
        redness[word] = float((arr[..., 0] - arr[..., 2]).mean())
    assert redness["crimson"] > redness["azure"] + 20, redness


def test_training_is_seeded(trained, tmp_path):
    images, titles = _data()
    spec = SmokeSpec(vocab=50, vae_steps=3, steps=3, batch_size=8, seed=5)

    def weights(folder) -> str:
        return hashlib.sha256(
            (folder / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
        ).hexdigest()

    a = train_smoke_pipeline(images, titles, spec, tmp_path / "a", key="a")
    b = train_smoke_pipeline(images, titles, spec, tmp_path / "b", key="b")
    assert a["denoiser_loss"] == b["denoiser_loss"]
    assert weights(tmp_path / "a") == weights(tmp_path / "b")
    with pytest.raises(ValueError, match="no history images"):
        train_smoke_pipeline([], [], spec, tmp_path / "c", key="c")


def test_distinctive_words_and_group_ranks():
    words = distinctive_words(
        {"A": ["neon glow city", "neon city"], "B": ["moss fern city", "fern forest"]},
        2,
        {"neon", "glow", "city", "moss", "fern", "forest"},
    )
    assert words == {"A": ["neon", "glow"], "B": ["fern", "forest"]}  # 'city' is in both
    rng = np.random.default_rng(0)
    real = {"A": rng.normal(0, 1, (20, 3)), "B": rng.normal(0, 1, (20, 3)) + 4}
    near_own = {"A": rng.normal(0, 0.5, (5, 3)), "B": rng.normal(0, 0.5, (5, 3)) + 4}
    swapped = {"A": near_own["B"], "B": near_own["A"]}
    good, bad = nearest_group_ranks(near_own, real), nearest_group_ranks(swapped, real)
    assert all(good[g]["rank"] == 1 and good[g]["nearest_share"] == 1 for g in "AB")
    assert all(
        bad[g]["rank"] == 2 and bad[g]["own_distance"] > bad[g]["other_distance"] for g in "AB"
    )
