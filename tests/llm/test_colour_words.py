"""The template's colour and light words from the images' colour features: hand-made
feature vectors, and real PNGs through the weight-free colour encoder."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from PIL import Image

from llm.colour_words import colour_words, dominant_hue, hue_word, with_colour_words
from llm.template_backend import persona_json
from media.image_features import HUE_BINS, colour_features, named_colours
from schemas.persona import MAX_ITEMS, MAX_PHRASE, parse_persona


def features(hue: float | None, brightness: float, saturation: float, **kw) -> dict:
    """A hand-made image of one hue (None: no colour), its histogram split between the
    two bins nearest to it as a histogram of a real image's pixels would be."""
    hist = [0.0] * HUE_BINS
    if hue is not None:
        at = hue * HUE_BINS - 0.5
        low = math.floor(at)
        hist[low % HUE_BINS] += 1 - (at - low)
        hist[(low + 1) % HUE_BINS] += at - low
    return {
        "brightness": brightness,
        "saturation": saturation,
        "contrast": kw.get("contrast", 0.1),
        "grain": kw.get("grain", 0.01),
        "hue": hist,
    }


def png(top: tuple, bottom: tuple, noise: float = 0.0, seed: int = 0) -> bytes:
    """Two colours, top and bottom half, with Gaussian pixel noise."""
    rng = np.random.default_rng(seed)
    arr = np.zeros((48, 48, 3), np.float32)
    arr[:24], arr[24:] = top, bottom
    arr += rng.normal(0, noise * 255, arr.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_bright_vivid_blue_and_dark_muted_green_images_are_said_so():
    blue = [features(2 / 3, 0.9, 0.9), features(0.65, 0.85, 0.88)]
    assert colour_words(blue) == ["cool blue tones", "bright airy light", "vivid saturated colours"]
    green = [features(0.34, 0.3, 0.35, grain=0.06), features(0.32, 0.35, 0.4, grain=0.08)]
    assert colour_words(green) == [
        "fresh green tones",
        "dark moody light",
        "desaturated colours",
        "grainy texture",
    ]


def test_middling_images_get_no_light_or_saturation_word_and_grey_ones_no_hue():
    assert colour_words([features(0.0, 0.6, 0.6)]) == ["rich red tones"]
    assert colour_words([features(0.5, 0.6, 0.6, grain=0.04)]) == ["cool cyan tones"]
    grey = colour_words([features(0.25, 0.9, 0.05, contrast=0.3)])
    assert grey == ["neutral grey tones", "bright airy light", "high contrast"]
    assert colour_words([]) == []


def test_two_colours_give_the_dominant_one_never_the_hue_between_and_a_spread_none():
    # most colour blue, some yellow: blue, not the green between them
    blue, yellow = features(2 / 3, 1, 1)["hue"], features(1 / 6, 1, 1)["hue"]
    hists = [[0.7 * b + 0.3 * y for b, y in zip(blue, yellow, strict=True)]]
    hue, share = dominant_hue(hists)
    assert hue_word(hue) == "cool blue tones" and share == pytest.approx(0.7)
    spread = [features(h / 6, 0.6, 0.6) for h in range(6)]  # six hues, equal
    assert colour_words(spread) == []  # no hue holds 40% of the colour
    assert hue_word(0.99) == hue_word(0.01) == "rich red tones"


def test_real_pngs_through_the_colour_encoder():
    # hues 0.068 and 0.106 (one each side of a histogram bin's edge): orange, 1/12
    pair = ((240, 110, 20), (240, 160, 20))
    orange = [named_colours(colour_features(png(*pair, seed=s))) for s in range(3)]
    assert colour_words(orange)[:2] == ["warm orange tones", "bright airy light"]
    dark = ((20, 40, 110), (40, 20, 110))  # hues 0.62 and 0.71: blue, 2/3
    navy = [named_colours(colour_features(png(*dark, noise=0.15, seed=s))) for s in (0, 1)]
    words = colour_words(navy)
    assert words[0] == "cool blue tones" and "dark moody light" in words
    assert "grainy texture" in words  # the added noise
    with pytest.raises(ValueError, match="24 values"):
        named_colours([0.0] * 5)


def test_visual_interests_keep_the_schema_limits_and_a_valid_persona():
    words = [f"keyword{i}" for i in range(8)]
    images = [features(2 / 3, 0.9, 0.9, grain=0.2)]
    out = with_colour_words(words, images, MAX_ITEMS)
    third = MAX_ITEMS // 3  # colour words take at most a third of the places, the last ones
    assert len(out) == MAX_ITEMS and out == [
        *words[: MAX_ITEMS - third],
        *colour_words(images)[:third],
    ]
    assert all(len(p) <= MAX_PHRASE for p in out)
    assert with_colour_words(words[:3], None, MAX_ITEMS) == words[:3]  # no images: as before
    inputs = {"subreddits": ["FilmPhotos"], "snippets": ["kodak portra grain"] * 3}
    plain = json.loads(persona_json(inputs))
    shown = json.loads(persona_json(inputs | {"image_colours": images}))
    assert shown["visual_interests"][: len(plain["visual_interests"])] == plain["visual_interests"]
    assert "cool blue tones" in shown["visual_interests"]
    parse_persona(json.dumps(shown))  # still a valid reply
