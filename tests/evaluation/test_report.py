"""Stages `score` and `report` on a small hand-built lake (real Ray, real CLIPScore in the
weight-free colour space, real template judge): scores against the held-out references of
bench/references, the persona rule of `persona_for`, and a report that names users by
pseudonym only — no Reddit name, no raw user id."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from rich.console import Console

from jobs import report, score
from jobs.config import load_config
from jobs.runner import run_stage
from schemas.lake import Lake

#: distinctive ids and names, so finding them anywhere in the report means a leak
USERS = {40117: "zz_alice_secret", 52093: "zz_bob_secret", 61288: "zz_carol_secret"}
TEMPLATE, OTHER = "template:template", "openai:tiny"
COLOUR = "colour-v1"

_CALL = {
    "raw": None,
    "prompt_version": "v1",
    "prompt_tokens": 10,
    "completion_tokens": 5,
    "attempts": 1,
    "seconds": 0.1,
}


def _png(root: Path, colour: tuple[int, int, int], size: int = 16) -> tuple[str, str, bytes]:
    """A solid-ish PNG stored like the generate stage stores one: (path, sha256, bytes)."""
    im = Image.new("RGB", (size, size), colour)
    im.putpixel((0, 0), (255 - colour[0], colour[1], 255 - colour[2]))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    rel = f"media/{sha[:2]}/{sha}.png"
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(data)
    return rel, sha, data


def _persona(u: int, llm: str, status: str = "done") -> dict:
    done = status == "done"
    return {
        "user_id": u,
        "source": "llm",
        "demographics": {"age": "30s", "gender": None, "region": None, "occupation": None},
        "interests": ["film photography"] if done else None,
        "affective_traits": ["calm"] if done else None,
        "visual_interests": ["muted colour", f"made by {llm}"] if done else None,
        "text": f"I shoot grainy film, persona by {llm}." if done else None,
        "evidence_mode": "full",
        "evidence_subreddits": [0],
        "evidence_ids": ["c1"],
        "evidence_tokens": 12,
        "tokenizer": "whitespace",
        "evidence": "snippets",
        "llm": llm,
        "template": llm == TEMPLATE,
        "status": status,
        "reason": None if done else "invalid JSON",
        "request_id": f"r{u}{llm}",
        **_CALL,
    }


def write_lake(root: Path) -> dict:
    """The tables `score` and `report` read, plus silver/users (names the report must not
    show); returns the colour features of each user's reference images."""
    from pipelines.image_features import colour_features

    lake = Lake(root)
    ids = sorted(USERS)
    lake.write_table(
        "silver/users",
        pa.table(
            {
                "user_id": pa.array(ids, pa.int32()),
                "author": [USERS[u] for u in ids],
                "posts": [5] * 3,
                "comments": [9] * 3,
                "subreddits": [2] * 3,
                "first_utc": [0] * 3,
                "last_utc": [1] * 3,
                "role": ["train"] * 3,
            }
        ),
    )
    refs, embeddings, features = [], [], {}
    for i, u in enumerate(ids):
        # one held-out gallery post of two images, and one history post
        for post, position, colour in (
            (f"ref{i}", 0, (200, 40 * i, 30)),
            (f"ref{i}", 1, (190, 40 * i + 10, 40)),
            (f"hist{i}", 0, (20, 200, 40 * i)),
        ):
            _, sha, data = _png(root / "_refs", colour)
            url = f"https://i.example.test/{post}_{position}.png"
            vec = colour_features(data)
            if post.startswith("ref"):
                refs.append(
                    {
                        "user_id": u,
                        "post_id": post,
                        "position": position,
                        "image_url": url,
                        "created_utc": 100 + i,
                    }
                )
                features.setdefault(u, []).append(vec)
            embeddings.append(
                {
                    "user_id": u,
                    "post_id": post,
                    "position": position,
                    "image_url": url,
                    "status": "ok",
                    "reason": None,
                    "sha256": sha,
                    "bytes": len(data),
                    "encoder": COLOUR,
                    "embedding": vec.tolist(),
                }
            )
    embeddings.append({**embeddings[0], "post_id": "gone", "status": "failed", "embedding": None})
    lake.write_table("bench/references", pa.Table.from_pylist(refs))
    lake.write_table("silver/image_embeddings", pa.Table.from_pylist(embeddings))
    lake.write_table(
        "bench/users",
        pa.table(
            {
                "user_id": pa.array(ids, pa.int32()),
                "stratum": ["c0:active"] * 3,
                "images": pa.array([3] * 3, pa.int32()),
                "references": [[f"ref{i}:0", f"ref{i}:1"] for i in range(3)],
            }
        ),
    )
    personas = [_persona(u, TEMPLATE) for u in ids]
    personas += [_persona(ids[0], OTHER), _persona(ids[1], OTHER, "failed")]
    lake.write_table("gold/personas", pa.Table.from_pylist(personas))
    images = []
    for i, u in enumerate(ids):
        made = [("base", "-"), ("none", TEMPLATE), ("zero_shot", TEMPLATE), ("k_shot", TEMPLATE)]
        if i < 2:
            made.append(("zero_shot", OTHER))  # user 1's persona by OTHER failed
        for j, (method, llm) in enumerate(made):
            rel, sha, _ = _png(root, (30 * j, 100 + 50 * i, 90))
            images.append(
                {
                    "image_id": hashlib.sha1(f"{u}{method}{llm}".encode()).hexdigest()[:20],
                    "user_id": u,
                    "prompt_id": f"p{i}",
                    "method": method,
                    "llm": llm,
                    "seed_index": 0,
                    "seed": 7,
                    "prompt": f"a lighthouse at dusk ({method})",
                    "negative_prompt": None,
                    "model": "smoke",
                    "smoke_model": True,
                    "status": "done",
                    "reason": None,
                    "path": rel,
                    "sha256": sha,
                    "width": 16,
                    "height": 16,
                    "seconds": 0.2,
                }
            )
    failed = {**images[0], "image_id": "failed0", "status": "failed", "reason": "oom"}
    failed.update(path=None, sha256=None, width=None, height=None)
    lake.write_table("bench/images", pa.Table.from_pylist([*images, failed]))
    return features


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    root = tmp_path_factory.mktemp("report") / "lake"
    features = write_lake(root)
    cfg = load_config(None, [f"lake.root={root}", "ray.num_cpus=2", "report.grids=6"])
    lake = Lake(root)
    for stage in (score.STAGE, report.STAGE):
        run_stage(stage, cfg, lake, Console(file=io.StringIO()))
    return root, features


def test_scores_compare_each_image_with_its_users_held_out_references(scored):
    from evaluation.stats import clip_score_to_set
    from pipelines.image_features import colour_features

    root, features = scored
    lake = Lake(root)
    images = {r["image_id"]: r for r in lake.read("bench/images").to_pylist()}
    scores = lake.read("bench/scores").to_pylist()
    assert len(scores) == len(images) - 1  # the failed image is not scored
    for s in scores:
        img = images[s["image_id"]]
        assert s["encoder"] == COLOUR and s["references"] == 2  # both gallery images
        vec = colour_features((root / img["path"]).read_bytes())
        want = clip_score_to_set(vec, np.stack(features[s["user_id"]]))
        assert s["clip_ref"] == pytest.approx(want)
        assert s["clip_prompt"] is None  # no CLIP in the colour space
        assert s["method_llm"] == img["llm"] and s["llm"] == TEMPLATE  # the judge


def test_the_judge_gets_persona_for_and_a_missing_persona_is_a_failed_input(scored):
    root, _ = scored
    scores = Lake(root).read("bench/scores").to_pylist()
    failed = [s for s in scores if s["status"] != "done"]
    bob = sorted(USERS)[1]
    assert [(s["user_id"], s["method_llm"]) for s in failed] == [(bob, OTHER)]
    assert failed[0]["attempts"] == 0 and "no persona" in failed[0]["reason"]
    assert failed[0]["clip_ref"] is not None  # its CLIPScore stands
    done = [s for s in scores if s["status"] == "done"]
    assert all(s["judge_score"] == pytest.approx(s["clip_ref"] / 10, abs=1e-3) for s in done)


def test_the_report_names_no_user_and_no_raw_user_id(scored):
    root, _ = scored
    assert "silver/users" not in report.STAGE.reads  # it cannot read the names at all
    out = root / "reports/zipbench"
    html = (out / "index.html").read_text()
    assert html.count("<div class='grid'>") == 3
    for n in (1, 2, 3):
        assert f"benchmark user {n}</b>" in html
    assert "persona by template:template" in html  # the persona the grid's LLM used
    summary = pq.read_table(out / "summary.parquet")
    assert {"method", "llm", "clip_ref", "cmmd"} <= set(summary.column_names)
    assert "user_id" not in summary.column_names
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    text = html + summary.to_pandas().to_csv()
    for uid, name in USERS.items():
        assert name not in text and name.encode() not in everything
        assert str(uid) not in text
        assert f"user {uid}" not in html
