"""Colour and light words, and whether one agrees with a planted taste (persona fidelity's
colour measure): a lexicon on the HSV wheel the sample world renders with."""

from __future__ import annotations

import re

#: colour and light words -> (taste field, what they claim). A float is a hue on the HSV
#: colour wheel, the one the sample world renders its images with (`colorsys.hsv_to_rgb`
#: in world/images.py: 0 red, 1/6 yellow, 1/3 green, 1/2 cyan, 2/3 blue, 5/6 magenta);
#: "+" / "-" claim the field is above / below 0.5 (saturation, brightness, contrast, grain
#: are in [0, 1]). Some words are also a community's vocabulary (teal, neon, muted, ...):
#: they count as claims about colour all the same.
LEXICON: dict[str, tuple[str, float | str]] = {
    **dict.fromkeys(["warm", "golden hour", "sunset"], ("warm", 1 / 12)),
    **dict.fromkeys(["cool", "cold", "icy"], ("cool", 7 / 12)),
    **{w: ("hue", 0.0) for w in ("red", "scarlet")},
    "crimson": ("hue", 0.97),
    **{w: ("hue", 1 / 12) for w in ("orange", "amber", "copper")},
    **{w: ("hue", 0.12) for w in ("golden", "gold")},
    "yellow": ("hue", 1 / 6),
    **{w: ("hue", 1 / 4) for w in ("yellow green", "chartreuse", "lime")},
    **{w: ("hue", 1 / 3) for w in ("green", "emerald")},
    **{w: ("hue", 5 / 12) for w in ("mint green", "spring green", "mint")},
    **{w: ("hue", 0.5) for w in ("teal", "cyan", "turquoise", "aqua")},
    "azure": ("hue", 0.58),
    **{w: ("hue", 2 / 3) for w in ("blue", "navy", "cobalt")},
    **{w: ("hue", 0.76) for w in ("purple", "violet", "lavender")},
    "magenta": ("hue", 5 / 6),
    **{w: ("hue", 0.92) for w in ("pink", "rose")},
    **{w: ("saturation", "+") for w in ("vivid", "saturated", "vibrant", "colorful")},
    **{w: ("saturation", "+") for w in ("colourful", "neon", "bold colors", "bold colours")},
    **{w: ("saturation", "-") for w in ("muted", "faded", "desaturated", "washed out")},
    **{w: ("saturation", "-") for w in ("monochrome", "black and white", "grey", "gray")},
    **{w: ("brightness", "+") for w in ("bright", "airy", "pastel", "sunny", "luminous")},
    **{w: ("brightness", "+") for w in ("high key", "sunlit")},
    **{w: ("brightness", "-") for w in ("dark", "moody", "shadow", "shadows", "dim")},
    **{w: ("brightness", "-") for w in ("gloomy", "low key", "low light")},
    **{w: ("contrast", "+") for w in ("high contrast", "contrasty", "punchy", "stark")},
    **{w: ("contrast", "-") for w in ("low contrast", "soft", "flat", "hazy", "matte")},
    **{w: ("grain", "+") for w in ("grain", "grainy", "noisy", "gritty")},
    **{w: ("grain", "-") for w in ("smooth", "clean", "glossy")},
}
#: a named colour agrees within this much of either planted hue; warm/cool are halves
HUE_TOLERANCE, HALF_TOLERANCE = 1 / 12, 1 / 4
_PHRASES = sorted((w for w in LEXICON if " " in w), key=len, reverse=True)


def _phrase(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def colour_words(entries: list[str]) -> list[str]:
    """The LEXICON words and phrases in visual-interest entries, in order."""
    found = []
    for entry in entries:
        text = f" {_phrase(entry)} "
        for p in _PHRASES:
            if f" {p} " in text:
                found.append(p)
                text = text.replace(f" {p} ", " ")
        found += [w for w in text.split() if w in LEXICON]
    return found


def _hue_gap(a: float, b: float) -> float:
    d = abs(a - b) % 1.0
    return min(d, 1.0 - d)


def agrees(word: str, taste: dict[str, float]) -> bool:
    """Whether a colour/light word agrees with a planted taste (field name -> value):
    a named hue lies within HUE_TOLERANCE of the taste's hue or hue2, warm/cool within a
    half wheel of the primary hue, a "+"/"-" word on its side of 0.5."""
    what, target = LEXICON[word]
    if what == "hue":
        return min(_hue_gap(target, taste["hue"]), _hue_gap(target, taste["hue2"])) <= (
            HUE_TOLERANCE
        )
    if what in ("warm", "cool"):
        return _hue_gap(target, taste["hue"]) <= HALF_TOLERANCE
    return (taste[what] > 0.5) == (target == "+")
