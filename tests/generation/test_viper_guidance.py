"""ViPer's guidance on the project's tiny Stable Diffusion pipeline, loaded the real way
(`load_pipeline`, diffusers' from_pretrained): with λ = 0 and no likes/dislikes the loop is
the pipeline's own call pixel for pixel; seeds decide the noise; likes steer the image."""

from __future__ import annotations

import numpy as np
import pytest

from generation.diffusion import RenderJob, RenderSpec, load_pipeline, render
from generation.viper_guidance import supports_viper_guidance, viper_render
from tests.tiny_diffusion import build_tiny_pipeline

STEPS, GUIDANCE = 4, 7.5
PROMPTS = ["a red fox in the snow", "a lighthouse at dusk"]
SEEDS = [11, 12]
LIKES = ["film grain, warm tones", "pastel, soft light"]
DISLIKES = ["neon, chrome", "harsh shadows"]


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    model = build_tiny_pipeline(tmp_path_factory.mktemp("viper") / "sd")
    return load_pipeline(RenderSpec(model=str(model), steps=STEPS, guidance_scale=GUIDANCE))


def _pixels(images) -> np.ndarray:
    return np.stack([np.asarray(im.convert("RGB"), dtype=np.int16) for im in images])


def _viper(pipe, likes=LIKES, dislikes=DISLIKES, **kw):
    return _pixels(viper_render(pipe, PROMPTS, likes, dislikes, SEEDS, STEPS, GUIDANCE, **kw))


def test_the_tiny_pipeline_supports_it(pipe):
    assert supports_viper_guidance(pipe)
    assert not supports_viper_guidance(object())


def test_without_preferences_it_is_the_pipelines_own_call(pipe):
    spec = RenderSpec(model="tiny", steps=STEPS, guidance_scale=GUIDANCE)
    jobs = [
        RenderJob(f"i{k}", p, None, s) for k, (p, s) in enumerate(zip(PROMPTS, SEEDS, strict=True))
    ]
    plain = _pixels(render(pipe, spec, jobs))
    ours = _viper(pipe, ["", ""], ["", ""], lam=0.0)
    assert ours.shape == plain.shape == (2, 32, 32, 3)
    assert np.abs(ours - plain).max() <= 1
    assert np.abs(_viper(pipe, ["", ""], ["", ""]) - plain).max() > 0  # λ·E("") counts


def test_same_seeds_same_images_other_seeds_other_images(pipe):
    a, b = _viper(pipe), _viper(pipe)
    assert np.array_equal(a, b)
    other = _pixels(viper_render(pipe, PROMPTS, LIKES, DISLIKES, [13, 14], STEPS, GUIDANCE))
    assert np.abs(other - a).max() > 10


def test_likes_steer_the_image_and_lambda_zero_ignores_them(pipe):
    base = _viper(pipe)
    assert np.abs(_viper(pipe, likes=["chrome, neon", "dark, gloomy"]) - base).max() > 2
    assert np.abs(_viper(pipe, dislikes=["", ""]) - base).max() > 2
    off = _viper(pipe, lam=0.0)
    assert np.array_equal(off, _viper(pipe, ["x", "y"], ["z", "w"], lam=0.0))


def test_lengths_must_match(pipe):
    with pytest.raises(ValueError, match="one entry per image"):
        viper_render(pipe, PROMPTS, LIKES[:1], DISLIKES, SEEDS, STEPS, GUIDANCE)
