"""Stage `score`'s domain: every generated image scored against its user — CLIPScore ×100
vs the user's held-out reference images (bench/references, embedded in
silver/image_embeddings), vs its prompt (CLIP only), the learned preference judge
(`evaluation.preference_judge`, fitted here on history images only) and, unless
``judge.backend: none``, the persona-conditioned LLM judge through the backends' fan-out
-> bench/scores (one row per made image). The same scorers, the same way, score the
agreement set (other benchmark users' reference images) -> bench/agreement, which the
report joins with the planted truth.

The LLM judge runs on its own `judge.*` runtime and sees one persona per user, the one
`judge.persona_llm` made (`persona_for`); a user without that persona gets judge rows
``failed`` for that missing input (no call made), the other scores standing.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contract.history import REFERENCES, held_out
from contract.stage import Stage
from contract.stage_io import StageIO
from media.image_embed import COLOUR, embed_payloads  # COLOUR: the weight-free encoder
from schemas.tables import MEDIA


def media_file(io: StageIO, rel: str) -> Path:
    """A lake image (``media/<2 hex>/<sha256>.png``, relative to the lake root) through
    the stage's declared ``media`` folder."""
    parts = Path(rel).parts
    if not parts or parts[0] != MEDIA or ".." in parts:
        raise ValueError(f"not a lake media path: {rel!r}")
    return io.path(MEDIA).joinpath(*parts[1:])


def reference_images(io: StageIO, emb: pa.Table | None = None) -> tuple[list[dict], str]:
    """Every embedded image of the benchmark's held-out reference posts (bench/references
    x silver/image_embeddings), as rows {user_id, post_id, position, image_url,
    embedding} sorted by user, post and position, and the encoder that made them."""
    name = "silver/image_embeddings"
    if emb is None:
        emb = io.read(name, ["post_id", "position", "status", "encoder", "embedding"])
    emb = emb.filter(pc.equal(emb["status"], "ok"))
    encoder = emb["encoder"][0].as_py() if emb.num_rows else COLOUR
    refs = io.read(REFERENCES, ["user_id", "post_id", "position", "image_url"])
    emb = emb.filter(held_out(emb, name, pc.unique(refs["post_id"])))  # references only
    by_key = {
        (p, q): v
        for p, q, v in zip(
            emb["post_id"].to_pylist(),
            emb["position"].to_pylist(),
            emb["embedding"].to_pylist(),
            strict=True,
        )
        if v is not None
    }
    refs = refs.sort_by(
        [("user_id", "ascending"), ("post_id", "ascending"), ("position", "ascending")]
    )
    rows = [
        r | {"embedding": by_key[(r["post_id"], r["position"])]}
        for r in refs.to_pylist()
        if (r["post_id"], r["position"]) in by_key
    ]
    return rows, encoder


def reference_vectors(
    io: StageIO, emb: pa.Table | None = None
) -> tuple[dict[int, np.ndarray], str]:
    """Each benchmark user's reference-image embeddings (every image of their held-out
    reference posts, from bench/references, embedded in silver/image_embeddings) and the
    encoder that made them. A user without an embedded reference gets a (0, 0) array."""
    rows, encoder = reference_images(io, emb)
    by_user: dict[int, list] = {
        u: [] for u in io.read("bench/users", ["user_id"])["user_id"].to_pylist()
    }
    for r in rows:
        by_user.setdefault(r["user_id"], []).append(r["embedding"])
    empty = np.zeros((0, 0), np.float32)
    return {u: np.asarray(v, np.float32) if v else empty for u, v in by_user.items()}, encoder


def load_clip_text(encoder: str):
    """(CLIP model, tokenizer) of `encoder` for CLIPScore vs the prompt (`from_pretrained`:
    a local folder or a model id)."""
    from transformers import CLIPModel, CLIPTokenizer

    return CLIPModel.from_pretrained(encoder).eval(), CLIPTokenizer.from_pretrained(encoder)


def prompt_scores(encoder: str, images: np.ndarray, prompts: list[str]) -> list[float | None]:
    """CLIPScore ×100 between each image and its prompt (CLIP only; None otherwise)."""
    if encoder == COLOUR:
        return [None] * len(prompts)
    import torch

    from evaluation.stats import clip_score

    model, tok = load_clip_text(encoder)
    out: list[float | None] = []
    for i in range(0, len(prompts), 64):
        enc = tok(prompts[i : i + 64], padding=True, truncation=True, return_tensors="pt")
        with torch.inference_mode():
            t = model.get_text_features(**enc)
        t = t if isinstance(t, torch.Tensor) else t.pooler_output
        out += clip_score(images[i : i + 64], t.float().numpy()).tolist()
    return out


AGREEMENT = "bench/agreement"  # the scorers' agreement set
#: the columns scoring computes afresh on every run (a resumed judge row keeps its call)
SCORE_COLUMNS = (
    "encoder",
    "embedding",
    "references",
    "clip_ref",
    "clip_prompt",
    "preference",
    "preference_history",
)


class _JudgeRuntime:
    """The score stage's config as the LLM fan-out reads it: ``llm`` is the judge's own
    section (model, runtime), never the rewriters'."""

    def __init__(self, config):
        self._config = config

    def __getattr__(self, name: str):
        return self._config.judge if name == "llm" else getattr(self._config, name)


def llm_labels(llm) -> list[str]:
    """The configured rewriting LLMs' labels (``llm.models``, else ``llm.backend:model``)."""
    return [m.label for m in llm.models] or [f"{llm.backend}:{llm.model}"]


def fit_judge(io: StageIO, emb: pa.Table):
    """The learned preference judge fitted on history (None, with the reason in the
    manifest, when the lake has too little history to fit it)."""
    from evaluation.preference_judge import fit_preference_judge, history_by_user

    j = io.config.judge
    history = history_by_user(emb, io.read(REFERENCES, ["user_id", "post_id"]))
    try:
        judge = fit_preference_judge(history, j.seed, j.preference_negatives, j.preference_users)
    except ValueError as e:
        io.details["preference"] = {"error": str(e)}
        return None
    io.details["preference"] = judge.details
    return judge


def preference_scores(judge, users: list[int], vecs: np.ndarray) -> tuple[list, list]:
    """(preference in [0, 1] or None, history images compared with) per query row; a user
    without history gets None and 0."""
    from evaluation.preference_judge import NoHistory

    pref: list[float | None] = [None] * len(users)
    hist = [0] * len(users)
    if judge is None:
        return pref, hist
    rows: dict[int, list[int]] = defaultdict(list)
    for i, u in enumerate(users):
        rows[u].append(i)
    for u, idx in rows.items():
        try:
            got = judge.score(u, vecs[idx])
        except NoHistory:
            continue
        for i, v in zip(idx, got, strict=True):
            pref[i], hist[i] = float(v), judge.history_size(u)
    return pref, hist


def agreement_pairs(refs: list[dict], users: list[int], n: int, seed: int) -> list[tuple]:
    """The agreement set: for each benchmark user, `n` of the OTHER benchmark users'
    reference images (a seeded digest of stable keys: the users' reference post ids, the
    image's post id and position), as (user_id, reference row)."""
    if n <= 0:
        return []
    keys: dict[int, list[str]] = defaultdict(list)
    for r in refs:
        keys[r["user_id"]].append(r["post_id"])
    out = []
    for u in users:
        key = ",".join(sorted(set(keys.get(u, [])))) or str(u)
        rank = sorted(
            (hashlib.sha1(f"{seed}\0{key}\0{r['post_id']}\0{r['position']}".encode()).digest(), i)
            for i, r in enumerate(refs)
            if r["user_id"] != u
        )
        out += [(u, refs[i]) for _, i in rank[:n]]
    return out


def fetch_pngs(io: StageIO, urls: list[str]) -> list[tuple[bytes | None, str | None]]:
    """Posted images' bytes for a multimodal judge, through the hostile-URL fetcher."""
    from concurrent.futures import ThreadPoolExecutor

    from media.fetch import FetchError, fetch_image

    c = io.config.images

    def one(url: str) -> tuple[bytes | None, str | None]:
        try:
            return fetch_image(
                url, c.allow_hosts, timeout=c.timeout_s, max_bytes=c.max_mb << 20
            ), None
        except FetchError as e:
            return None, f"fetch failed: {e.reason}: {e}"

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, urls))


def _off_call(version: str, rid: str) -> dict:
    """Call columns of a row the judge did not see (``judge.backend: none``)."""
    return {
        "llm": "none",
        "template": False,
        "status": "skipped",
        "reason": "LLM judge off (judge.backend: none)",
        "raw": None,
        "prompt_version": version,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "attempts": 0,
        "seconds": 0.0,
        "request_id": rid,
    }


def score(io: StageIO) -> None:
    """bench/images + references + history + personas -> bench/scores (one row per made
    image) and bench/agreement (the agreement set: other users' references, same scorers)."""
    from evaluation.judge import JUDGE_VERSION, judge_messages, judge_persona_llm, parse_judgement
    from evaluation.stats import clip_score_to_set
    from llm import ChatRequest, check_judge, request_id
    from llm.llm_stage import (
        Work,
        call_columns,
        direct_call,
        finish,
        preflight,
        run_llm_stage,
        runtime,
    )
    from schemas.persona import persona_for, roleplay
    from schemas.tables import table as spec_of

    judge = io.config.judge
    if not judge.off:
        check_judge(judge)
        preflight([judge])
    images = io.read("bench/images")
    images = images.filter(pc.equal(images["status"], "done")).to_pylist()
    emb = io.read(
        "silver/image_embeddings",
        ["user_id", "post_id", "position", "status", "encoder", "embedding"],
    )
    ref_rows, encoder = reference_images(io, emb)
    refs, _ = reference_vectors(io, emb)
    pref_judge = fit_judge(io, emb)
    with io.console.status(f"score: embedding {len(images):,} images ({encoder})"):
        payloads = [media_file(io, r["path"]).read_bytes() for r in images]
        vecs = embed_payloads(encoder, payloads)
        clip_prompt = prompt_scores(encoder, vecs, [r["prompt"] for r in images])
    pref, hist = preference_scores(pref_judge, [r["user_id"] for r in images], vecs)
    persona_llm = judge_persona_llm(judge.persona_llm, llm_labels(io.config.llm))
    bench_users = sorted(refs)
    pairs = agreement_pairs(ref_rows, bench_users, judge.agreement_images, judge.seed)
    avecs = np.asarray([r["embedding"] for _, r in pairs] or np.zeros((0, 0)), np.float32)
    apref, ahist = preference_scores(pref_judge, [u for u, _ in pairs], avecs)
    users = sorted({r["user_id"] for r in images} | set(bench_users))
    shown = dict(
        zip(
            users,
            persona_for([(u, persona_llm) for u in users], io.read("gold/personas")),
            strict=True,
        )
    )
    rt = runtime(judge)
    empty = np.zeros((0, 0), np.float32)
    meta: dict[str, dict] = {}
    works = {t: Work(judge) for t in ("bench/scores", AGREEMENT)}
    direct: dict[str, list[dict]] = {t: [] for t in works}

    def plan(table: str, row: dict, png: bytes, prompt: str | None, inputs: dict, why: str | None):
        p = shown.get(row["user_id"])
        messages = judge_messages(roleplay(p) if p is not None else "", prompt, png)
        inputs |= {"reference_similarity": row["clip_ref"], "space": encoder, "v": JUDGE_VERSION}
        rid = request_id(judge.label, "judge", messages, inputs, rt)
        blank = {"judge_score": None, "judge_reason": None}
        meta[rid] = row
        if judge.off:
            direct[table].append(row | blank | _off_call(JUDGE_VERSION, rid))
        elif p is None or why:
            why = why or f"no persona: user {row['user_id']} has no done persona by {persona_llm}"
            direct[table].append(
                row | blank | direct_call(judge, JUDGE_VERSION, rid, "failed", why)
            )
        else:
            works[table].requests.append(ChatRequest(rid, "judge", messages, inputs, json=True))

    for r, v, png, cp, pv, ph in zip(images, vecs, payloads, clip_prompt, pref, hist, strict=True):
        ref = refs.get(r["user_id"], empty)
        row = {
            "image_id": r["image_id"],
            "user_id": r["user_id"],
            "prompt_id": r["prompt_id"],
            "method": r["method"],
            "method_llm": r["llm"],
            "seed_index": r["seed_index"],
            "encoder": encoder,
            "embedding": np.asarray(v, np.float32).tolist(),
            "references": int(len(ref)),
            "clip_ref": clip_score_to_set(v, ref) if len(ref) else None,
            "clip_prompt": cp,
            "preference": pv,
            "preference_history": ph,
        }
        plan(
            "bench/scores",
            row,
            png,
            r["prompt"],
            {"image": r["image_id"], "sha256": r["sha256"]},
            None,
        )

    multimodal = not judge.off and judge.backend != "template"
    fetched = fetch_pngs(io, [r["image_url"] for _, r in pairs]) if multimodal and pairs else []
    for k, ((u, r), v, pv, ph) in enumerate(zip(pairs, avecs, apref, ahist, strict=True)):
        ref = refs.get(u, empty)
        png, why = fetched[k] if fetched else (b"", None)
        row = {
            "user_id": u,
            "post_id": r["post_id"],
            "position": r["position"],
            "encoder": encoder,
            "references": int(len(ref)),
            "clip_ref": clip_score_to_set(v, ref) if len(ref) else None,
            "preference": pv,
            "preference_history": ph,
        }
        inputs = {"user": u, "post": r["post_id"], "position": r["position"]}
        plan(AGREEMENT, row, png or b"", None, inputs, why)

    def to_row(req, res) -> dict:
        out = res["output"] or {}
        return (
            meta[req.id]
            | {"judge_score": out.get("score"), "judge_reason": out.get("reason")}
            | call_columns(judge, JUDGE_VERSION, res)
        )

    jio = replace(io, config=_JudgeRuntime(io.config))
    results = {}
    for table, w in works.items():
        w.to_row, w.direct = to_row, direct[table]
        if judge.off:
            schema = spec_of(table).schema
            results[table] = pa.Table.from_pylist(w.direct, schema=schema)
        else:
            out = run_llm_stage(jio, "score", table, [w], {"judge": parse_judgement})
            results[table] = fresh(out, meta, table)
    io.write(AGREEMENT, results[AGREEMENT])
    finish(io, "bench/scores", results["bench/scores"], "score")
    agree = results[AGREEMENT]
    status = agree["status"].to_pylist()
    retry = sum(
        1 for s, n in zip(status, agree["attempts"].to_pylist(), strict=True) if s == "failed" and n
    )
    io.details["failed"] = io.details.get("failed", 0) + retry
    io.details["agreement"] = {
        "pairs": agree.num_rows,
        "per_user": judge.agreement_images,
        "judge_done": status.count("done"),
        "judge_failed": status.count("failed"),
    }
    io.details |= {
        "judge": judge.label,
        "judge_persona_llm": persona_llm,
        "clip_ref_by_method": clip_ref_by_method(results["bench/scores"]),
        "preference_by_method": clip_ref_by_method(results["bench/scores"], "preference", 4),
        "encoder": encoder,
    }


def fresh(out: pa.Table, meta: dict[str, dict], table: str) -> pa.Table:
    """The fan-out's table with the scoring columns of this run (a resumed judge row
    keeps its call but never an older run's CLIPScore or preference)."""
    from schemas.tables import table as spec_of

    rows = out.to_pylist()
    for r in rows:
        now = meta[r["request_id"]]
        r.update({k: now[k] for k in SCORE_COLUMNS if k in now})
    return pa.Table.from_pylist(rows, schema=spec_of(table).schema)


def clip_ref_by_method(
    scores: pa.Table, column: str = "clip_ref", digits: int = 2
) -> dict[str, float]:
    """Mean of a score column (CLIPScore vs references) per method (for the manifest)."""
    by_method: dict[str, list[float]] = defaultdict(list)
    for m, s in zip(scores["method"].to_pylist(), scores[column].to_pylist(), strict=True):
        if s is not None:
            by_method[m].append(s)
    return {m: round(float(np.mean(v)), digits) for m, v in sorted(by_method.items())}


STAGE = Stage(
    name="score",
    run=score,
    engine="ray",
    inputs=(
        "bench/images",
        "bench/users",
        "bench/references",
        "silver/image_embeddings",
        "gold/personas",
    ),
    outputs=("bench/scores", "bench/agreement"),
    folders=(MEDIA,),
    config=(
        "judge",
        "llm.backend",
        "llm.model",
        "llm.models",
        "images.allow_hosts",
        "images.timeout_s",
        "images.max_mb",
    ),
    summary="CLIPScore vs references and prompt, preference judge, LLM judge -> bench/scores "
    "and the agreement set -> bench/agreement",
)
