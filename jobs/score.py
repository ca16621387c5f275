"""Stage `score`: every generated image scored against its user — CLIPScore ×100 vs the
user's held-out reference images (and vs the prompt with CLIP), and the persona-
conditioned judge through the LLM backends -> bench/scores.

python -m jobs.score -c conf/cluster.yaml [key=value ...]
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow.compute as pc

from jobs.llm_stage import Work, call_columns, finish, run_llm_stage
from jobs.runner import Stage, StageContext
from pipelines.image_embed import COLOUR  # the weight-free default encoder's name


def reference_vectors(ctx: StageContext) -> tuple[dict[int, np.ndarray], str]:
    """Each benchmark user's reference-image embeddings and the encoder that made them."""
    emb = ctx.lake.read("silver/image_embeddings")
    emb = emb.filter(pc.equal(emb["status"], "ok"))
    encoder = emb["encoder"][0].as_py() if emb.num_rows else COLOUR
    by_key = {
        f"{p}:{q}": v
        for p, q, v in zip(
            emb["post_id"].to_pylist(),
            emb["position"].to_pylist(),
            emb["embedding"].to_pylist(),
            strict=True,
        )
    }
    refs = {}
    for r in ctx.lake.read("bench/users").to_pylist():
        vecs = [by_key[k] for k in r["references"] if k in by_key]
        refs[r["user_id"]] = np.asarray(vecs, np.float32) if vecs else np.zeros((0, 0), np.float32)
    return refs, encoder


def embed_images(encoder: str, payloads: list[bytes]) -> np.ndarray:
    """Generated images in the reference images' space (colour features or that CLIP)."""
    from pipelines.image_features import ClipImageEncoder, colour_features

    if not payloads:
        return np.zeros((0, 0), np.float32)
    if encoder == COLOUR:
        return np.stack([colour_features(p) for p in payloads])
    return ClipImageEncoder(encoder)(payloads)


def prompt_scores(encoder: str, images: np.ndarray, prompts: list[str]) -> list[float | None]:
    """CLIPScore ×100 between each image and its prompt (CLIP only; None otherwise)."""
    if encoder == COLOUR:
        return [None] * len(prompts)
    import torch
    from transformers import CLIPModel, CLIPTokenizer

    from evaluation.stats import clip_score

    model = CLIPModel.from_pretrained(encoder).eval()
    tok = CLIPTokenizer.from_pretrained(encoder)
    out = []
    for i in range(0, len(prompts), 64):
        enc = tok(prompts[i : i + 64], padding=True, truncation=True, return_tensors="pt")
        with torch.inference_mode():
            t = model.get_text_features(**enc)
        t = t if isinstance(t, torch.Tensor) else t.pooler_output
        out += clip_score(images[i : i + 64], t.float().numpy()).tolist()
    return out


def persona_texts(ctx: StageContext) -> dict[tuple[int, str], str]:
    """(user, llm) -> persona as roleplay text, for the judge."""
    from generation.persona import roleplay

    rows = ctx.lake.read("gold/personas").to_pylist()
    return {(r["user_id"], r["llm"]): roleplay(r) for r in rows if r["status"] == "done"}


def run(ctx: StageContext) -> None:
    """bench/images + references + personas -> bench/scores (one row per made image)."""
    from evaluation.judge import JUDGE_VERSION, judge_messages, parse_judgement
    from evaluation.stats import clip_score_to_set
    from generation.llm import ChatRequest, request_id
    from jobs.llm_stage import preflight, runtime

    lake, cfg = ctx.lake, ctx.config
    judge = cfg.judge
    if judge.backend in ("hf", "vllm"):
        raise ValueError("judge.backend: the judge needs a multimodal model (openai) or template")
    preflight([judge])
    images = lake.read("bench/images")
    images = images.filter(pc.equal(images["status"], "done")).to_pylist()
    refs, encoder = reference_vectors(ctx)
    with ctx.console.status(f"score: embedding {len(images):,} images ({encoder})"):
        payloads = [(lake.root / r["path"]).read_bytes() for r in images]
        vecs = embed_images(encoder, payloads)
        clip_prompt = prompt_scores(encoder, vecs, [r["prompt"] for r in images])
    personas = persona_texts(ctx)
    first = {}
    for (u, _), text in sorted(personas.items()):
        first.setdefault(u, text)
    rt = runtime(cfg.llm)
    w = Work(judge)
    meta: dict[str, dict] = {}
    for r, v, png, cp in zip(images, vecs, payloads, clip_prompt, strict=True):
        ref = refs.get(r["user_id"], np.zeros((0, 0)))
        sim = clip_score_to_set(v, ref) if len(ref) else None
        persona = personas.get((r["user_id"], r["llm"])) or first.get(r["user_id"], "")
        messages = judge_messages(persona, r["prompt"], png)
        inputs = {
            "image": r["image_id"],
            "sha256": r["sha256"],
            "reference_similarity": sim,
            "space": encoder,
            "v": JUDGE_VERSION,
        }
        rid = request_id(judge.label, "judge", messages, inputs, rt)
        meta[rid] = {
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
        w.requests.append(ChatRequest(rid, "judge", messages, inputs, json=True))

    def to_row(req, res) -> dict:
        out = res["output"] or {}
        return (
            meta[req.id]
            | {"judge_score": out.get("score"), "judge_reason": out.get("reason")}
            | call_columns(judge, JUDGE_VERSION, res)
        )

    w.to_row = to_row
    out = run_llm_stage(ctx, "score", "bench/scores", [w], parsers={"judge": parse_judgement})
    finish(ctx, "bench/scores", out, "score")
    by_method: dict[str, list[float]] = defaultdict(list)
    for m, s in zip(out["method"].to_pylist(), out["clip_ref"].to_pylist(), strict=True):
        if s is not None:
            by_method[m].append(s)
    ctx.details["clip_ref_by_method"] = {
        m: round(float(np.mean(v)), 2) for m, v in by_method.items()
    }
    ctx.details["encoder"] = encoder


STAGE = Stage(
    name="score",
    inputs=(
        "bench/images",
        "bench/users",
        "silver/image_embeddings",
        "gold/personas",
    ),
    outputs=("bench/scores",),
    section="judge,llm",
    engine="ray",
    run=run,
    summary="CLIPScore vs references and prompt, persona-conditioned judge -> bench/scores",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
