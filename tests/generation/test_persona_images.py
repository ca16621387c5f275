"""`personas.images`: the user's own history images in the persona request, on a small
lake whose posted images are real PNGs served on loopback (film users post bright vivid
blue pictures, garden users dark muted green ones). One sweep (template + openai against
the local OpenAI-compatible server): the server gets each user's newest history images as
data-URI image parts and never a benchmark reference; the template says the colours. With
`personas.images: 0` nothing is shown, as before."""

from __future__ import annotations

import colorsys
import hashlib
import io
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image
from rich.console import Console

from jobs.config import ConfigError, load_config
from jobs.dag import BY_NAME
from jobs.runner import run_stage
from media.image_features import colour_features
from schemas.persona import MAX_ITEMS, MAX_PHRASE
from storage.lake import Lake
from tests.generation.world import write_generation_world
from tests.llm_server import ChatServer, decode_data_uri
from tests.static_server import serve_folder

SPLIT, PERSONAS = BY_NAME["split"], BY_NAME["personas"]
#: community -> (hue, saturation, value) its users' pictures are painted in
LOOK = {"film": (2 / 3, 0.9, 0.92), "garden": (1 / 3, 0.35, 0.3)}


def painted(hue: float, sat: float, val: float, seed: int) -> bytes:
    """A 32x32 PNG of a hue band around `hue` (every image a little different)."""
    rng = np.random.default_rng(seed)
    hues = hue + np.linspace(-0.03, 0.03, 32) + rng.normal(0, 0.005)
    row = np.array([colorsys.hsv_to_rgb(h % 1, sat, val) for h in hues])
    arr = np.repeat(row[None], 32, axis=0) + rng.normal(0, 0.01, (32, 32, 3))
    buf = io.BytesIO()
    Image.fromarray((np.clip(arr, 0, 1) * 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def serve_images(root: Path, folder: Path, base: str, community: dict[int, str]) -> dict:
    """Paint every posted image, point silver/user_images and silver/image_embeddings at
    the server, embed them in the colour space; returns sha256 -> (user, post id)."""
    lake = Lake(root)
    imgs = lake.read("silver/user_images").to_pylist()
    made, rows = {}, []
    for i, r in enumerate(imgs):
        data = painted(*LOOK[community[r["user_id"]]], seed=i)
        (folder / f"{r['post_id']}.png").write_bytes(data)
        r["image_url"] = f"{base}/{r['post_id']}.png"
        sha = hashlib.sha256(data).hexdigest()
        made[sha] = (r["user_id"], r["post_id"])
        rows.append(
            {
                **{k: r[k] for k in ("user_id", "post_id", "position", "image_url")},
                "status": "ok",
                "reason": None,
                "sha256": sha,
                "bytes": len(data),
                "encoder": "colour-v1",
                "embedding": colour_features(data).tolist(),
            }
        )
    lake.write_table("silver/user_images", pa.Table.from_pylist(imgs))
    lake.write_table("silver/image_embeddings", pa.Table.from_pylist(rows))
    return made


def _run(root: Path, stages, *extra: str) -> None:
    cfg = load_config(
        None,
        [
            f"lake.root={root}",
            "ray.num_cpus=2",
            "bench.users=6",
            "images.allow_hosts=[127.0.0.1]",
            *extra,
        ],
    )
    for stage in stages:
        run_stage(stage, cfg, Lake(root), Console(file=io.StringIO()))


@pytest.fixture(scope="module")
def shown(tmp_path_factory):
    """The lake after a template + openai sweep with `personas.images=2`, then one with
    `personas.images=0`: (root, community, painted images, the server's image parts per
    request and run, template personas per run)."""
    root = tmp_path_factory.mktemp("lake")
    community = write_generation_world(root)
    sent, personas = [], []
    pics = tmp_path_factory.mktemp("pics")
    with serve_folder(pics) as base:
        made = serve_images(root, pics, base, community)
        _run(root, [SPLIT])
        with ChatServer() as server:
            sweep = (
                "llm.models=[{backend: template, model: template}, "
                f"{{backend: openai, model: vlm, base_url: '{server.url}'}}]"
            )
            for k in (2, 0):
                server.images.clear()
                _run(root, [PERSONAS], sweep, f"personas.images={k}")
                sent.append(dict(server.images))
                rows = Lake(root).read("gold/personas").to_pylist()
                personas.append({r["user_id"]: r for r in rows if r["llm"] == "template:template"})
    return root, community, made, sent, personas


def test_openai_gets_each_users_newest_history_images_as_data_uris_never_a_reference(shown):
    root, _, made, sent, _ = shown
    lake = Lake(root)
    refs = lake.read("bench/references").to_pylist()
    held = {(r["user_id"], r["post_id"]) for r in refs}
    assert held  # the benchmark users' newest posts are held out
    posted = defaultdict(list)  # user -> post ids, newest first
    for r in sorted(lake.read("silver/user_images").to_pylist(), key=lambda r: -r["created_utc"]):
        posted[r["user_id"]].append(r["post_id"])
    with_images = [urls for urls in sent[0].values() if urls]
    assert len(with_images) == 12  # one persona request per user, each with its images
    for urls in with_images:
        shown_posts = []
        for url in urls:
            mime, data = decode_data_uri(url)  # a data URI, or ValueError
            assert mime == "image/png"
            shown_posts.append(made[hashlib.sha256(data).hexdigest()])
        (user,) = {u for u, _ in shown_posts}  # one user's images
        assert not held & set(shown_posts)  # no reference image among them
        history = [p for p in posted[user] if (user, p) not in held]
        assert [p for _, p in shown_posts] == history[:2]  # the newest two, newest first
    assert not any(sent[1].values())  # personas.images=0: no image part at all


def test_the_template_says_the_colours_of_what_each_user_posts(shown):
    _, community, _, _, personas = shown
    with_images, without = personas
    for u, row in with_images.items():
        words = row["visual_interests"]
        taste = (
            {"cool blue tones", "bright airy light", "vivid saturated colours"}
            if community[u] == "film"
            else {"fresh green tones", "dark moody light", "desaturated colours"}
        )
        colours = MAX_ITEMS // 3  # colour words take at most a third of the places
        assert set(words[-colours:]) <= taste  # the last places, from their own taste
        assert len(words) <= MAX_ITEMS and all(len(w) <= MAX_PHRASE for w in words)
        plain = without[u]["visual_interests"]
        assert not {w for w in plain if "tones" in w or "light" in w}  # images=0: none
        kept = len(words) - colours  # the evidence's words first, then the colour words
        assert words[:kept] == plain[:kept] and kept >= min(len(plain), MAX_ITEMS - colours)
        assert row["request_id"] != without[u]["request_id"]
        shown_ids = [e for e in row["evidence_ids"] if ":" in e]  # "post_id:position"
        assert len(shown_ids) == 2 and row["evidence_ids"][-2:] == shown_ids
        assert not [e for e in without[u]["evidence_ids"] if ":" in e]


def test_personas_images_is_validated():
    assert load_config(None, ["personas.images=4"]).personas.images == 4
    for bad in ("-1", "17", "many"):
        with pytest.raises(ConfigError, match="personas.images"):
            load_config(None, [f"personas.images={bad}"])


def test_the_images_are_read_only_through_the_declared_history(shown):
    """Without `silver/image_embeddings` among its history inputs the stage cannot read
    the images (a plain input would let the references in)."""
    from dataclasses import replace

    from contract.errors import ContractError
    from generation.stages.personas import personas
    from jobs.runner import stage_io

    root = shown[0]
    cfg = load_config(None, [f"lake.root={root}", "personas.images=2"])
    plain = replace(PERSONAS, history=("silver/snippets",))
    with pytest.raises(ContractError, match="reads the history of 'silver/image_embeddings'"):
        personas(stage_io(plain, cfg, Lake(root), Console(file=io.StringIO())))
