"""Stages `score` and `report` on a small hand-built lake (real Ray, real CLIPScore in the
weight-free colour space, the real learned preference judge, real template judge): scores
against the held-out references of bench/references, one persona per user for the judge
(`judge.persona_llm`), the agreement set and its table against a planted truth, win rates
vs none and vs the swapped control, and a report that names users by pseudonym only — no
Reddit name, no raw user id."""

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
from jobs.runner import is_current, run_stage
from storage.lake import Lake

#: distinctive ids and names, so finding them anywhere in the report means a leak
USERS = {40117: "zz_alice_secret", 52093: "zz_bob_secret", 61288: "zz_carol_secret"}
EXTRA = [70001, 70002, 70003, 70004, 70005]  # history-only users, not in the benchmark
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
    from media.image_features import colour_features

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
    refs, embeddings, features, truth = [], [], {}, []
    # benchmark users, then history-only users (they train the preference judge too)
    for i, u in enumerate([*ids, *EXTRA]):
        # one held-out gallery post of two images (benchmark users), and history posts
        posts = [
            (f"hist{i}_{k}", 0, (20 + 9 * k, 200 - 30 * i % 200, 40 * i % 256)) for k in range(3)
        ]
        if u in USERS:
            posts = [
                (f"ref{i}", 0, (200, 40 * i, 30)),
                (f"ref{i}", 1, (190, 40 * i + 10, 40)),
                *posts,
            ]
        for post, position, colour in posts:
            _, sha, data = _png(root / "_refs", colour)
            url = f"https://i.example.test/{post}_{position}.png"
            vec = colour_features(data)
            taste = [c / 255 for c in colour] + [0.5, 0.5, 0.5]
            truth.append((post, position, USERS.get(u, f"zz_extra_{u}"), taste))
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
    gt = root.parent / "ground_truth"
    gt.mkdir(exist_ok=True)
    authors = {a for _, _, a, _ in truth}
    pq.write_table(
        pa.table(
            {"author": sorted(authors), "taste": [[0.8, 0.3, 0.1, 0.5, 0.5, 0.5]] * len(authors)}
        ),
        gt / "users.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "post_id": [t[0] for t in truth],
                "position": [t[1] for t in truth],
                "author": [t[2] for t in truth],
                "taste": [t[3] for t in truth],
            }
        ),
        gt / "images.parquet",
    )
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
        made = [
            ("base", "-"),
            ("none", TEMPLATE),
            ("zero_shot", TEMPLATE),
            ("swapped", TEMPLATE),
            ("k_shot", TEMPLATE),
        ]
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


def _config(root: Path, *extra: str):
    args = [f"lake.root={root}", "ray.num_cpus=2", "report.grids=6", "judge.backend=template"]
    args.append(f"report.ground_truth={root.parent / 'ground_truth'}")
    return load_config(None, [*args, *extra])


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    root = tmp_path_factory.mktemp("report") / "lake"
    features = write_lake(root)
    lake = Lake(root)
    for stage in (score.STAGE, report.STAGE):
        run_stage(stage, _config(root), lake, Console(file=io.StringIO()))
    return root, features


def test_scores_compare_each_image_with_its_users_held_out_references(scored):
    from evaluation.stats import clip_score_to_set
    from media.image_features import colour_features

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


def test_the_judge_sees_one_persona_per_user_and_a_missing_one_is_a_failed_input(scored, tmp_path):
    import shutil

    root, _ = scored
    scores = Lake(root).read("bench/scores").to_pylist()
    done = [s for s in scores if s["status"] == "done"]
    assert len(done) == len(scores)  # every user has a persona by the first LLM (template)
    assert all(s["judge_score"] == pytest.approx(s["clip_ref"] / 10, abs=1e-3) for s in done)
    # judge.persona_llm=OTHER: bob's OTHER persona failed, so every image of bob's, whichever
    # method or LLM made it, is a failed input; carol has no OTHER persona at all
    other = tmp_path / "lake"
    shutil.copytree(root, other)
    run_stage(
        score.STAGE,
        _config(other, f"judge.persona_llm={OTHER}"),
        Lake(other),
        Console(file=io.StringIO()),
    )
    rows = Lake(other).read("bench/scores").to_pylist()
    alice, bob, carol = sorted(USERS)
    failed = {(s["user_id"], s["method"], s["method_llm"]) for s in rows if s["status"] != "done"}
    assert failed == {
        (s["user_id"], s["method"], s["method_llm"]) for s in rows if s["user_id"] in (bob, carol)
    }
    assert {s["user_id"] for s in rows if s["status"] == "done"} == {alice}
    assert all(s["attempts"] == 0 and OTHER in s["reason"] for s in rows if s["status"] != "done")
    assert all(s["clip_ref"] is not None for s in rows)  # its CLIPScore stands


def test_preference_and_the_agreement_set_are_scored_from_history(scored):
    root, _ = scored
    lake = Lake(root)
    scores = lake.read("bench/scores").to_pylist()
    assert all(0 <= s["preference"] <= 1 and s["preference_history"] == 3 for s in scores)
    agree = lake.read("bench/agreement").to_pylist()
    refs = {
        (r["post_id"], r["position"]): r["user_id"]
        for r in lake.read("bench/references").to_pylist()
    }
    # each benchmark user: the other two users' 2 reference images each, never their own
    assert len(agree) == 3 * 4
    assert all(refs[(a["post_id"], a["position"])] != a["user_id"] for a in agree)
    assert all(a["status"] == "done" and 0 <= a["preference"] <= 1 for a in agree)
    assert all(a["judge_score"] == pytest.approx(a["clip_ref"] / 10, abs=1e-3) for a in agree)
    assert (
        "ground_truth" not in str(score.STAGE.files) and "report.ground_truth" in report.STAGE.files
    )


def test_the_report_shows_agreement_and_win_rates_vs_swapped(scored, tmp_path):
    import re
    import shutil

    root, _ = scored
    html = (root / "reports/zipbench/index.html").read_text()
    table = re.search(r"<table class='agreement'>(.*?)</table>", html, re.S).group(1)
    assert "SROCC (vs −distance)" in table and "PLCC (vs −distance)" in table
    for scorer in ("CLIPScore vs references", "preference judge", "template judge"):
        assert f"<td>{scorer}" in table
    assert "the report is the only stage that reads the ground truth" in html
    # this truth has no planted communities: the persona-fidelity section says so
    assert "Persona fidelity (planted truth)" in html and "communities.parquet" in html
    assert "Personalisation is what the user&#x27;s own persona adds" in html
    for col in ("CS win vs swapped", "pref win vs swapped", "CS win vs none", "Δ CS vs swapped"):
        assert col in html
    summary = pq.read_table(root / "reports/zipbench/summary.parquet").to_pandas()
    row = summary[(summary["method"] == "zero_shot") & (summary["llm"] == TEMPLATE)].iloc[0]
    assert 0 <= row["cs_win_vs_swapped"] <= 1 and 0 <= row["pref_win_vs_none"] <= 1
    swapped = summary[summary["method"] == "swapped"].iloc[0]
    assert np.isnan(swapped["cs_win_vs_swapped"]) and not np.isnan(swapped["cs_win_vs_none"])
    # the truth is a declared input of the report: editing it in place makes it stale
    cfg, lake = _config(root), Lake(root)
    assert is_current(report.STAGE, cfg, lake)[0]
    gt = root.parent / "ground_truth" / "users.parquet"
    kept = tmp_path / "users.parquet"
    shutil.copy(gt, kept)
    t = pq.read_table(gt)
    pq.write_table(t.slice(1), gt)
    try:
        assert is_current(report.STAGE, cfg, lake) == (False, "file report.ground_truth changed")
    finally:
        shutil.copy(kept, gt)
    assert is_current(report.STAGE, cfg, lake)[0]
    # without the truth, no agreement table (and the report says why)
    bare = _config(root, "report.ground_truth=null")
    run_stage(report.STAGE, bare, lake, Console(file=io.StringIO()))
    html = (root / "reports/zipbench/index.html").read_text()
    assert "<table class='agreement'>" not in html and "report.ground_truth" in html
    assert "Persona fidelity" not in html
    run_stage(report.STAGE, cfg, lake, Console(file=io.StringIO()))


def test_the_report_names_no_user_and_no_raw_user_id(scored):
    root, _ = scored
    assert "silver/users" not in report.STAGE.reads  # it cannot read the names at all
    out = root / "reports/zipbench"
    html = (out / "index.html").read_text()
    assert html.count("<div class='grid'>") == 3
    for n in (1, 2, 3):
        assert f"benchmark user {n}</b>" in html
    assert "persona by template:template" in html  # the persona the grid's LLM used
    assert "<table class='agreement'>" in html  # the truth was joined, its names stayed out
    summary = pq.read_table(out / "summary.parquet")
    assert {"method", "llm", "clip_ref", "preference", "cmmd"} <= set(summary.column_names)
    assert "user_id" not in summary.column_names
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    text = html + summary.to_pandas().to_csv()
    text += pq.read_table(out / "agreement.parquet").to_pandas().to_csv()
    for uid, name in USERS.items():
        assert name not in text and name.encode() not in everything
        assert str(uid) not in text
        assert f"user {uid}" not in html


def test_with_the_llm_judge_off_the_preference_judge_scores_alone(scored, tmp_path):
    import shutil

    root, _ = scored
    off = tmp_path / "lake"
    shutil.copytree(root, off)
    shutil.copytree(root.parent / "ground_truth", tmp_path / "ground_truth")
    cfg = _config(off, "judge.backend=none")
    for stage in (score.STAGE, report.STAGE):
        run_stage(stage, cfg, Lake(off), Console(file=io.StringIO()))
    lake = Lake(off)
    for name in ("bench/scores", "bench/agreement"):
        rows = lake.read(name).to_pylist()
        assert rows and all(r["status"] == "skipped" and r["llm"] == "none" for r in rows)
        assert all(r["judge_score"] is None and r["attempts"] == 0 for r in rows)
        assert all(0 <= r["preference"] <= 1 for r in rows)
    html = (off / "reports/zipbench/index.html").read_text()
    assert "LLM judge: off (judge.backend: none)" in html and "Judge: template" not in html
    table = html.split("<table class='agreement'>", 1)[1].split("</table>", 1)[0]
    assert "preference judge" in table
    assert "template judge" not in table and "LLM judge" not in table
    assert is_current(score.STAGE, cfg, lake)[0]  # skipped rows are no failures to retry
