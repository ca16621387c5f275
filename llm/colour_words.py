"""Colour and light words for the images a user posted, read from their colour features
(the weight-free space of `media.image_features`, by name): what the template backend
says of a user's pictures in their visual interests, in place of a model that sees them.

Thresholds are on the features' own scales (HSV value and saturation in [0, 1], a
saturation-weighted hue histogram), not fitted to any data set: a word is said only when
the user's images, averaged, are clearly on one side. The words describe what is measured
(a look), never a medium or a genre ("grainy texture", not "film grain"): a persona's
visual interests are also read as its interests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: the twelve sectors of the HSV colour wheel (centred on 0, 1/12, ..., 11/12: red,
#: orange, yellow, chartreuse, green, spring green, cyan, azure, blue, violet, magenta,
#: rose), in words
HUES: tuple[str, ...] = (
    "rich red tones",
    "warm orange tones",
    "warm golden yellow tones",
    "yellow-green tones",
    "fresh green tones",
    "mint green tones",
    "cool cyan tones",
    "cool azure tones",
    "cool blue tones",
    "purple violet tones",
    "fuchsia tones",
    "pink rose tones",
)
BRIGHT, DARK = 0.75, 0.45  # mean HSV value
VIVID, MUTED = 0.8, 0.45  # mean HSV saturation
NEUTRAL = 0.2  # below this mean saturation the images have no hue to speak of
ONE_HUE = 0.4  # share of the colour in the dominant hue's sector and its two neighbours
GRAINY = 0.05  # mean absolute luminance noise (grain)
CONTRASTY = 0.25  # luminance standard deviation
MAX_WORDS = 4


def hue_word(hue: float) -> str:
    """The word for a hue in [0, 1) (0 = red, 1/3 = green, 2/3 = blue)."""
    return HUES[math.floor((hue % 1.0) * len(HUES) + 0.5) % len(HUES)]


def dominant_hue(histograms: Sequence[Sequence[float]]) -> tuple[float, float]:
    """(dominant hue, its share) of saturation-weighted hue histograms (equal bins over
    the colour wheel), each image weighing the same: the circular mean of the peak bin of
    their mean histogram with its two neighbours, and the share of all colour in those
    three bins. Two colours apart on the wheel give one of them, never the hue between."""
    n = len(histograms[0])
    mean = [0.0] * n
    for hist in histograms:
        total = sum(hist) or 1.0
        for i, w in enumerate(hist):
            mean[i] += w / total / len(histograms)
    if sum(mean) <= 0:
        return 0.0, 0.0
    peak = max(range(n), key=lambda i: (mean[i], -i))
    x = y = share = 0.0
    for i in (peak - 1, peak, peak + 1):
        w, angle = mean[i % n], 2 * math.pi * ((i % n) + 0.5) / n
        x, y, share = x + w * math.cos(angle), y + w * math.sin(angle), share + w
    return (math.atan2(y, x) / (2 * math.pi)) % 1.0, share / sum(mean)


def _mean(images: Sequence[dict], name: str) -> float | None:
    values = [float(i[name]) for i in images if i.get(name) is not None]
    return sum(values) / len(values) if values else None


def colour_words(images: Sequence[dict]) -> list[str]:
    """At most `MAX_WORDS` phrases for the images' features (dicts with ``brightness``,
    ``saturation``, ``contrast``, ``grain`` and ``hue``, the hue histogram), averaged:
    their hue, their light, their saturation, then grain or contrast. None for none."""
    if not images:
        return []
    words = []
    sat = _mean(images, "saturation")
    hists = [i["hue"] for i in images if i.get("hue")]
    if sat is not None and sat < NEUTRAL:
        words.append("neutral grey tones")
    elif hists:
        hue, share = dominant_hue(hists)
        if share >= ONE_HUE:
            words.append(hue_word(hue))
    light = _mean(images, "brightness")
    if light is not None and light >= BRIGHT:
        words.append("bright airy light")
    elif light is not None and light <= DARK:
        words.append("dark moody light")
    if sat is not None and sat >= VIVID:
        words.append("vivid saturated colours")
    elif sat is not None and NEUTRAL <= sat <= MUTED:
        words.append(
            "pale desaturated colours" if (light or 0) >= BRIGHT else "desaturated colours"
        )
    grain, contrast = _mean(images, "grain"), _mean(images, "contrast")
    if grain is not None and grain >= GRAINY:
        words.append("grainy texture")
    elif contrast is not None and contrast >= CONTRASTY:
        words.append("high contrast")
    return words[:MAX_WORDS]


def with_colour_words(words: Sequence[str], images: Sequence[dict] | None, cap: int) -> list[str]:
    """Visual interests from the evidence's `words` and the images' colour words (after
    them), at most `cap` in all: colour words take the last places, at most a third of
    them (the evidence's words, what the user talks about, keep the rest)."""
    colours = [c for c in colour_words(images or []) if c not in words][: cap // 3]
    return [*list(words)[: cap - len(colours)], *colours]
