"""Stage `score`'s domain: every generated image scored against its user — CLIPScore ×100
vs the user's held-out reference images (bench/references, embedded in
silver/image_embeddings) and vs its prompt (CLIP only), and the persona-conditioned
judge through the LLM backends' fan-out -> bench/scores (one row per made image).

The persona the judge sees is `generation.persona.persona_for`'s (the one rule for which
persona goes with an image); an image whose LLM made no persona of its user gets a judge
row ``failed`` for that missing input (no call made), its CLIPScores standing.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.image_embed import COLOUR  # the weight-free default encoder's name
from schemas.stage_io import REFERENCES, StageIO, held_out

MEDIA = "media"


def media_file(io: StageIO, rel: str) -> Path:
    """A lake image (``media/<2 hex>/<sha256>.png``, relative to the lake root) through
    the stage's declared ``media`` folder."""
    parts = Path(rel).parts
    if not parts or parts[0] != MEDIA or ".." in parts:
        raise ValueError(f"not a lake media path: {rel!r}")
    return io.path(MEDIA).joinpath(*parts[1:])


def reference_vectors(io: StageIO) -> tuple[dict[int, np.ndarray], str]:
    """Each benchmark user's reference-image embeddings (every image of their held-out
    reference posts, from bench/references, embedded in silver/image_embeddings) and the
    encoder that made them. A user without an embedded reference gets a (0, 0) array."""
    name = "silver/image_embeddings"
    emb = io.read(name, ["post_id", "position", "status", "encoder", "embedding"])
    emb = emb.filter(pc.equal(emb["status"], "ok"))
    encoder = emb["encoder"][0].as_py() if emb.num_rows else COLOUR
    refs = io.read(REFERENCES, ["user_id", "post_id", "position"])
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
    by_user: dict[int, list] = {
        u: [] for u in io.read("bench/users", ["user_id"])["user_id"].to_pylist()
    }
    for u, p, q in zip(
        *(refs[c].to_pylist() for c in ("user_id", "post_id", "position")), strict=True
    ):
        if (p, q) in by_key:
            by_user.setdefault(u, []).append(by_key[(p, q)])
    empty = np.zeros((0, 0), np.float32)
    return {u: np.asarray(v, np.float32) if v else empty for u, v in by_user.items()}, encoder


def embed_images(encoder: str, payloads: list[bytes]) -> np.ndarray:
    """Generated images in the reference images' space (colour features or that CLIP)."""
    from pipelines.image_features import ClipImageEncoder, colour_features

    if not payloads:
        return np.zeros((0, 0), np.float32)
    if encoder == COLOUR:
        return np.stack([colour_features(p) for p in payloads])
    return ClipImageEncoder(encoder)(payloads)


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


def score(io: StageIO) -> None:
    """bench/images + references + personas -> bench/scores (one row per made image)."""
    from evaluation.judge import JUDGE_VERSION, judge_messages, parse_judgement
    from evaluation.stats import clip_score_to_set
    from generation.llm import ChatRequest, check_judge, request_id
    from generation.llm_stages import (
        Work,
        call_columns,
        direct_call,
        finish,
        preflight,
        run_llm_stage,
        runtime,
    )
    from generation.persona import persona_for, roleplay

    judge = io.config.judge
    check_judge(judge)
    preflight([judge])
    images = io.read("bench/images")
    images = images.filter(pc.equal(images["status"], "done")).to_pylist()
    refs, encoder = reference_vectors(io)
    with io.console.status(f"score: embedding {len(images):,} images ({encoder})"):
        payloads = [media_file(io, r["path"]).read_bytes() for r in images]
        vecs = embed_images(encoder, payloads)
        clip_prompt = prompt_scores(encoder, vecs, [r["prompt"] for r in images])
    personas = persona_for([(r["user_id"], r["llm"]) for r in images], io.read("gold/personas"))
    rt = runtime(io.config.llm)
    w = Work(judge)
    meta: dict[str, dict] = {}
    empty = np.zeros((0, 0), np.float32)
    for r, v, png, cp, p in zip(images, vecs, payloads, clip_prompt, personas, strict=True):
        ref = refs.get(r["user_id"], empty)
        sim = clip_score_to_set(v, ref) if len(ref) else None
        persona = roleplay(p) if p is not None else ""
        messages = judge_messages(persona, r["prompt"], png)
        inputs = {
            "image": r["image_id"],
            "sha256": r["sha256"],
            "reference_similarity": sim,
            "space": encoder,
            "v": JUDGE_VERSION,
        }
        rid = request_id(judge.label, "judge", messages, inputs, rt)
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
            "clip_ref": sim,
            "clip_prompt": cp,
        }
        if p is None:
            why = f"no persona: user {r['user_id']} has no done persona by {r['llm']}"
            failed = direct_call(judge, JUDGE_VERSION, rid, "failed", why)
            w.direct.append(row | {"judge_score": None, "judge_reason": None} | failed)
            continue
        meta[rid] = row
        w.requests.append(ChatRequest(rid, "judge", messages, inputs, json=True))

    def to_row(req, res) -> dict:
        out = res["output"] or {}
        return (
            meta[req.id]
            | {"judge_score": out.get("score"), "judge_reason": out.get("reason")}
            | call_columns(judge, JUDGE_VERSION, res)
        )

    w.to_row = to_row
    out = run_llm_stage(io, "score", "bench/scores", [w], parsers={"judge": parse_judgement})
    finish(io, "bench/scores", out, "score")
    io.details["clip_ref_by_method"] = clip_ref_by_method(out)
    io.details["encoder"] = encoder


def clip_ref_by_method(scores: pa.Table) -> dict[str, float]:
    """Mean CLIPScore vs references per method (for the manifest)."""
    by_method: dict[str, list[float]] = defaultdict(list)
    for m, s in zip(scores["method"].to_pylist(), scores["clip_ref"].to_pylist(), strict=True):
        if s is not None:
            by_method[m].append(s)
    return {m: round(float(np.mean(v)), 2) for m, v in sorted(by_method.items())}
