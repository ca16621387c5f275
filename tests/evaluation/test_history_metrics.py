"""Pigeon's history metrics and its noisy-history filter, on a tiny lake the tests write
(a few 64 px PNGs served over real HTTP from loopback): history CLIP-I in the lake's
colour space and in the EfficientNet-Lite0 space, the DINO-style score vs references,
held-out references never in history; the filter picking the history images (Pigeon)
and titles (`history`) most relevant to the prompt, and the newest with it off."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image
from rich.console import Console

from jobs.config import load_config
from jobs.runner import stage_io
from media.image_features import colour_features
from storage.lake import Lake
from tests.static_server import serve_folder

SIDE = 64
REF_POST = "a00"  # sorts first: without the held-out rule it would head the history


def png(colour, stripes: bool = False) -> bytes:
    im = Image.new("RGB", (SIDE, SIDE), colour)
    if stripes:
        for x in range(0, SIDE, 8):
            im.paste((255, 255, 255), (x, 0, x + 4, SIDE))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


#: user 1's posts: (post id, file, image); a01 is missing from the server (an expired link)
HISTORY = [
    ("a01", "gone.png", None),
    ("a02", "g1.png", png((20, 160, 40))),
    ("a03", "g2.png", png((30, 180, 50), stripes=True)),
    ("a04", "g3.png", png((10, 140, 30))),  # past judge.history_images=3
]
REFERENCE = (REF_POST, "ref.png", png((255, 0, 255)))


def _cfg(root: Path, *extra: str):
    return load_config("conf/local.yaml", [f"lake.root={root}", *extra])


def _score_lake(root: Path, data: Path, url: str) -> None:
    """silver/image_embeddings (colour space) for users 1 and 2, bench/references (one
    held-out post each), bench/users."""
    rows, refs = [], []
    for uid, posts in ((1, [REFERENCE, *HISTORY]), (2, [("b00", "ref2.png", png((0, 0, 255)))])):
        for pid, name, data_png in posts:
            if data_png is not None:
                (data / name).write_bytes(data_png)
            vec = colour_features(data_png if data_png is not None else png((20, 160, 40)))
            rows.append(
                {
                    "user_id": uid,
                    "post_id": pid,
                    "position": 0,
                    "image_url": f"{url}/{name}",
                    "status": "ok",
                    "encoder": "colour-v1",
                    "embedding": vec.tolist(),
                }
            )
        ref = rows[-len(posts)]
        refs.append({k: ref[k] for k in ("user_id", "post_id", "position", "image_url")})
    lake = Lake(root)
    lake.write_table("silver/image_embeddings", pa.Table.from_pylist(rows))
    lake.write_table(
        "bench/references", pa.Table.from_pylist([r | {"created_utc": 1} for r in refs])
    )
    lake.write_table(
        "bench/users",
        pa.Table.from_pylist(
            [
                {"user_id": u, "stratum": "t", "images": 1, "references": [f"{p}:0"]}
                for u, p in ((1, REF_POST), (2, "b00"))
            ]
        ),
    )


def test_history_clip_i_is_the_cosine_to_the_history_mean_x100():
    from evaluation.history_metrics import history_clip_i

    got = history_clip_i(np.array([1.0, 0.0]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert got == pytest.approx(100 / np.sqrt(2))
    assert history_clip_i(np.array([0.0, 1.0]), np.array([[0.0, -1.0]])) == pytest.approx(-100)
    assert history_clip_i(np.array([1.0, 0.0]), np.zeros((0, 2))) is None


def test_score_history_in_both_spaces_never_sees_a_reference(tmp_path):
    """History CLIP-I (colour space) and the DINO-style scores of made images: a green
    image is closer to the green history than a magenta one, which is closer to the
    magenta held-out reference; the reference is never history; the history cap, the
    expired link and a user without history."""
    from evaluation.history_metrics import history_rows, score_history
    from evaluation.references import load_references
    from evaluation.stages.score import STAGE

    data, root = tmp_path / "data", tmp_path / "lake"
    data.mkdir()
    with serve_folder(data) as url:
        _score_lake(root, data, url)
        lake = Lake(root)
        rows = history_rows(
            lake.read("silver/image_embeddings"), lake.read("bench/references"), cap=3
        )
        assert [r["post_id"] for r in rows[1]] == ["a01", "a02", "a03"]  # no a00, capped
        assert 2 not in rows  # their one post is held out
        made = [png((25, 170, 45)), png((250, 5, 250)), png((25, 170, 45))]
        vecs = np.stack([colour_features(p) for p in made])
        sio = stage_io(STAGE, _cfg(root, "judge.history_images=3"), lake, Console(quiet=True))
        green, magenta, other = score_history(sio, load_references(sio), [1, 1, 2], made, vecs)
        cfg = _cfg(root, "judge.history_images=3", "judge.dino=false")
        off = stage_io(STAGE, cfg, lake, Console(quiet=True))
        no_dino = score_history(off, load_references(off), [1], made[:1], vecs[:1])[0]
    assert green["history_images"] == magenta["history_images"] == 3
    assert green["clip_history"] > magenta["clip_history"]
    assert green["dino_history"] > magenta["dino_history"]
    assert magenta["dino_ref"] > green["dino_ref"]
    assert green["clip_history"] > 90 and -100 <= magenta["dino_history"] <= 100
    assert other["history_images"] == 0
    assert other["clip_history"] is None and other["dino_history"] is None
    assert other["dino_ref"] is not None  # user 2's reference is fetched and embedded
    assert sio.details["history_metrics"]["refetch_failed"] == 1  # a01's expired link
    assert sio.details["history_metrics"]["users_with_history"] == 1
    assert no_dino["clip_history"] == pytest.approx(green["clip_history"])
    assert no_dino["dino_history"] is None and no_dino["dino_ref"] is None


def _images_lake(root: Path, data: Path, url: str) -> dict[str, bytes]:
    """silver/user_images of user 1 (titled posts, the newest a ramen bowl) and a
    held-out reference post titled about a cat; returns file bytes by title word."""
    posts = [  # (post, title, created, colour); c0 is held out
        ("c0", "my cat portrait", 50, (255, 0, 255)),
        ("c1", "a sleepy cat curled on the sofa", 10, (120, 120, 120)),
        ("c2", "red barn at sunset in the fields", 20, (200, 30, 30)),
        ("c3", "a bowl of ramen noodles", 30, (240, 200, 90)),
    ]
    rows, by_word = [], {}
    for pid, title, t, colour in posts:
        (data / f"{pid}.png").write_bytes(png(colour))
        by_word[pid] = (data / f"{pid}.png").read_bytes()
        rows.append(
            {
                "user_id": 1,
                "post_id": pid,
                "position": 0,
                "subreddit": "pics",
                "title": title,
                "created_utc": t,
                "image_url": f"{url}/{pid}.png",
                "origin": "i.redd.it",
            }
        )
    lake = Lake(root)
    lake.write_table("silver/user_images", pa.Table.from_pylist(rows))
    ref = {k: rows[0][k] for k in ("user_id", "post_id", "position", "image_url")}
    lake.write_table("bench/references", pa.Table.from_pylist([ref | {"created_utc": 50}]))
    return by_word


def test_pigeon_filter_conditions_on_the_most_relevant_history_images(tmp_path):
    """Pigeon's filter on: the history image whose title is nearest the prompt (the cat,
    never the held-out cat portrait); off: the user's newest (the ramen bowl)."""
    from generation.stages.generate import STAGE, history_images

    data, root = tmp_path / "data", tmp_path / "lake"
    data.mkdir()
    prompts = [
        {"user_id": 1, "prompt_id": "p1", "prompt": "a cute kitten asleep"},
        {"user_id": 1, "prompt_id": "p2", "prompt": "farm buildings at dusk"},
    ]
    with serve_folder(data) as url:
        files = _images_lake(root, data, url)
        lake = Lake(root)
        on = stage_io(STAGE, _cfg(root, "diffusion.history_images=1"), lake, Console(quiet=True))
        got_on = history_images(on, prompts)
        off_cfg = _cfg(root, "diffusion.history_images=2", "diffusion.history_filter=false")
        got_off = history_images(stage_io(STAGE, off_cfg, lake, Console(quiet=True)), prompts)
    assert got_on[1, "p1"] == (files["c1"],)
    assert got_on[1, "p2"] == (files["c2"],)
    assert got_off[1, "p1"] == got_off[1, "p2"] == (files["c3"], files["c2"])
    assert all(files["c0"] not in v for v in (*got_on.values(), *got_off.values()))


def test_history_method_filter_shows_the_most_relevant_titles(tmp_path):
    """`history`'s examples: the `rewrite.history_k` titles nearest the prompt with the
    filter on, the newest `history_k` with it off."""
    from generation.stages.rewrite import STAGE, example_sources
    from schemas.methods import get_method

    titles = ["a bowl of ramen noodles", "red barn at sunset", "a sleepy cat on the sofa"]
    prompt = "a cute kitten asleep"
    history = [get_method("history")]
    got = {}
    for flag in ("true", "false"):
        cfg = _cfg(tmp_path, "rewrite.history_k=1", f"rewrite.history_filter={flag}")
        sio = stage_io(STAGE, cfg, Lake(tmp_path), Console(quiet=True))
        src = example_sources(sio, history, [{"prompt": prompt}], {1: list(enumerate(titles))})
        got[flag] = src["similar"](titles, prompt)
    assert got == {"true": ["a sleepy cat on the sofa"], "false": ["a bowl of ramen noodles"]}
