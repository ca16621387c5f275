"""The IP-Adapter ("pigeon" history baseline) path for real: a tiny random SD pipeline and
a tiny random IP-Adapter saved in the h94/IP-Adapter layout, loaded through the production
`load_pipeline` (diffusers' `load_ip_adapter`) and rendered through `render`/`Renderer`."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest

from generation.diffusion import Renderer, RenderJob, RenderSpec, load_pipeline, render
from tests.tiny_diffusion import build_tiny_ip_adapter, build_tiny_pipeline

SIZE = 32
WEIGHT = "ip-adapter_sd15.bin"


def png(color: str, size: int = 16) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


JOBS = [
    RenderJob("a", "a cat", None, 1, (png("red"),)),
    RenderJob("b", "a dog on a hill", "blurry", 2, (png("blue"), png("yellow"))),
]


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> RenderSpec:
    root = tmp_path_factory.mktemp("ip")
    model = build_tiny_pipeline(root / "sd", image_size=SIZE)
    adapter = build_tiny_ip_adapter(root / "adapter", weight_name=WEIGHT)
    return RenderSpec(
        model=str(model),
        ip_adapter=str(adapter),
        ip_adapter_subfolder="models",
        ip_adapter_weight=WEIGHT,
        ip_adapter_scale=1.0,
        steps=2,
        batch_size=2,
    )


@pytest.fixture(scope="module")
def renderer(spec, tmp_path_factory) -> Renderer:
    """The production actor class, run in-process (its __init__ calls `load_pipeline`)."""
    return Renderer(spec, str(tmp_path_factory.mktemp("lake")))


def test_adapter_is_wired_into_the_pipeline(renderer):
    from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0

    pipe = renderer.pipe
    assert pipe.image_encoder is not None and pipe.feature_extractor is not None
    assert len(pipe.unet.encoder_hid_proj.image_projection_layers) == 1
    ip = [p for p in pipe.unet.attn_processors.values() if isinstance(p, IPAdapterAttnProcessor2_0)]
    assert len(ip) == 4 and all(p.scale == [1.0] for p in ip)


def test_renderer_makes_both_jobs_at_pipeline_size_deterministically(renderer):
    first = renderer.run(JOBS)
    assert [r["status"] for r in first] == ["done", "done"], first
    assert all((r["width"], r["height"]) == (SIZE, SIZE) for r in first)
    assert first[0]["sha256"] != first[1]["sha256"]
    again = renderer.run(JOBS)
    assert [r["sha256"] for r in again] == [r["sha256"] for r in first]


def test_same_job_twice_gives_identical_pixels(renderer, spec):
    (a,) = render(renderer.pipe, spec, [JOBS[0]])
    (b,) = render(renderer.pipe, spec, [JOBS[0]])
    assert a.size == (SIZE, SIZE)
    assert np.array_equal(pixels(a), pixels(b))


def test_history_image_conditions_the_output(renderer, spec):
    (red,) = render(renderer.pipe, spec, [JOBS[0]])
    (green,) = render(renderer.pipe, spec, [replace(JOBS[0], history=(png("green"),))])
    assert np.abs(pixels(red) - pixels(green)).max() > 0


def test_ip_adapter_scale_changes_the_output(renderer, spec):
    off = replace(spec, ip_adapter_scale=0.0)
    (zero,) = render(load_pipeline(off), off, [JOBS[0]])
    (one,) = render(renderer.pipe, spec, [JOBS[0]])
    assert np.abs(pixels(zero) - pixels(one)).max() > 0


def test_safetensors_weights_load_like_bin(spec, tmp_path):
    st = build_tiny_ip_adapter(tmp_path / "st", weight_name="ip-adapter_sd15.safetensors")
    st_spec = replace(spec, ip_adapter=str(st), ip_adapter_weight="ip-adapter_sd15.safetensors")
    a = load_pipeline(spec).unet.encoder_hid_proj.state_dict()
    b = load_pipeline(st_spec).unet.encoder_hid_proj.state_dict()
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)


def test_a_batch_conditions_each_job_on_its_own_history(renderer, spec):
    images = render(renderer.pipe, spec, JOBS)
    alone = [render(renderer.pipe, spec, [j])[0] for j in JOBS]
    assert [im.size for im in images] == [(SIZE, SIZE)] * 2
    assert all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(images, alone, strict=True))
