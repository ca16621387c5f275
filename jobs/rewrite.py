"""Stage `rewrite` (Ray): every benchmark user's base prompts rewritten by each method
(`none`, `zero_shot`, `k_shot`, `history` through the LLM; `viper` from the user's visual
preferences) and each configured LLM -> bench/rewrites.

python -m jobs.rewrite -c conf/cluster.yaml [key=value ...]
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import pyarrow.compute as pc

from jobs.llm_stage import Work, call_columns, finish, run_llm_stage
from jobs.runner import Stage, StageContext

PERSONA_KEYS = ("demographics", "interests", "affective_traits", "visual_interests", "text")


def rewrite_id(user_id: int, prompt_id: str, method: str, llm: str) -> str:
    """A row's key in bench/rewrites."""
    return hashlib.sha1(f"{user_id}\0{prompt_id}\0{method}\0{llm}".encode()).hexdigest()[:16]


def user_titles(ctx: StageContext, users: set[int]) -> dict[int, list[tuple[str, str]]]:
    """Each user's earlier image titles (post id, title), newest first, deduplicated."""
    imgs = ctx.lake.read("silver/user_images").select(
        ["user_id", "post_id", "title", "created_utc"]
    )
    imgs = imgs.filter(pc.is_valid(imgs["title"])).sort_by(
        [("user_id", "ascending"), ("created_utc", "descending")]
    )
    out: dict[int, list[tuple[str, str]]] = defaultdict(list)
    seen: set[tuple[int, str]] = set()
    for u, pid, title in zip(
        *(imgs[c].to_pylist() for c in ("user_id", "post_id", "title")), strict=True
    ):
        title = " ".join(title.split())
        if u in users and title and (u, title) not in seen:
            seen.add((u, title))
            out[u].append((pid, title))
    return out


def embed_texts(ctx: StageContext, texts: list[str]) -> dict[str, object]:
    """Sentence-transformers vectors (features.text_model, default the packaged MiniLM)."""
    from sentence_transformers import SentenceTransformer

    from pipelines.text_features import default_text_model

    if not texts:
        return {}
    model = SentenceTransformer(ctx.config.features.text_model or default_text_model())
    vecs = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    return dict(zip(texts, vecs, strict=True))


def direct_row(spec, base: dict, status: str, reason: str | None, **cols) -> dict:
    """A row made without an LLM call (ViPer prompts, or failed for a missing input)."""
    from generation.prompts import REWRITE_VERSION

    call = {
        "status": status,
        "reason": reason,
        "raw": None,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "attempts": 0,
        "seconds": 0.0,
        "request_id": base["rewrite_id"],
    }
    return (
        base
        | {"prompt": None, "negative_prompt": None, "examples": []}
        | cols
        | call_columns(spec, REWRITE_VERSION, call)
    )


def run(ctx: StageContext) -> None:
    """bench/prompts + gold/personas + gold/visual_preferences -> bench/rewrites."""
    import numpy as np

    from generation.prompts import REWRITE_VERSION
    from generation.rewrite import RewriteJob, most_similar, rewrite_request, viper_prompt
    from jobs.llm_stage import preflight, runtime

    lake, cfg = ctx.lake, ctx.config
    preflight(cfg.llm.specs())
    methods = cfg.rewrite.methods
    prompts = lake.read("bench/prompts").to_pylist()
    users = {p["user_id"] for p in prompts}
    held_out = {
        r["user_id"]: {ref.split(":")[0] for ref in r["references"]}
        for r in lake.read("bench/users").to_pylist()
    }
    titles = {  # history only: a user's held-out reference posts are never shown
        u: [(pid, t) for pid, t in v if pid not in held_out.get(u, set())]
        for u, v in user_titles(ctx, users).items()
    }
    personas = {(r["user_id"], r["llm"]): r for r in lake.read("gold/personas").to_pylist()}
    prefs = {(r["user_id"], r["llm"]): r for r in lake.read("gold/visual_preferences").to_pylist()}
    vectors: dict = {}
    if "history" in methods:
        texts = sorted({t for v in titles.values() for _, t in v} | {p["prompt"] for p in prompts})
        with ctx.console.status(f"rewrite: embedding {len(texts):,} prompts and titles"):
            vectors = embed_texts(ctx, texts)
    rt = runtime(cfg.llm)
    work = []
    for spec in cfg.llm.specs():
        label = spec.label
        w = Work(spec)
        meta: dict[str, dict] = {}

        def direct(base: dict, status: str, reason: str | None, w=w, spec=spec, **cols) -> None:
            w.direct.append(direct_row(spec, base, status, reason, **cols))

        for p in prompts:
            u = p["user_id"]
            history = [t for pid, t in titles.get(u, []) if pid != p.get("post_id")]
            for method in methods:
                base = {
                    "rewrite_id": rewrite_id(u, p["prompt_id"], method, label),
                    "user_id": u,
                    "prompt_id": p["prompt_id"],
                    "method": method,
                    "base_prompt": p["prompt"],
                }
                if method == "viper":
                    pref = prefs.get((u, label))
                    if pref is None or pref["status"] != "done":
                        why = pref["reason"] if pref else "not extracted for this model"
                        direct(base, "failed", f"no visual preferences: {why}")
                    else:
                        pos, neg = viper_prompt(p["prompt"], pref["likes"], pref["dislikes"])
                        direct(base, "done", None, prompt=pos, negative_prompt=neg)
                    continue
                persona = None
                if method in ("zero_shot", "k_shot"):
                    row = personas.get((u, label))
                    if row is None or row["status"] != "done":
                        why = row["reason"] if row else "not verbalised for this model"
                        direct(base, "failed", f"no persona: {why}")
                        continue
                    persona = {k: row[k] for k in PERSONA_KEYS}
                examples: list[str] = []
                if method == "k_shot":
                    examples = history[: cfg.rewrite.k]
                elif method == "history" and history:
                    cand = np.stack([vectors[t] for t in history])
                    idx = most_similar(vectors[p["prompt"]], cand, cfg.rewrite.history_k)
                    examples = [history[i] for i in idx]
                if method in ("k_shot", "history") and not examples:
                    direct(base, "failed", "no earlier prompts or image titles of this user")
                    continue
                job = RewriteJob(u, p["prompt_id"], method, p["prompt"], tuple(examples))
                req = rewrite_request(job, persona, label, rt)
                meta[req.id] = base | {"examples": examples}
                w.requests.append(req)

        def to_row(req, res, spec=spec, meta=meta) -> dict:
            return (
                meta[req.id]
                | {"prompt": res["output"], "negative_prompt": None}
                | call_columns(spec, REWRITE_VERSION, res)
            )

        w.to_row = to_row
        work.append(w)
    out = run_llm_stage(ctx, "rewrite", "bench/rewrites", work)
    out = out.sort_by(
        [("user_id", "ascending"), ("prompt_id", "ascending"), ("method", "ascending")]
    )
    finish(ctx, "bench/rewrites", out, "rewrite")


STAGE = Stage(
    name="rewrite",
    inputs=(
        "bench/users",
        "bench/prompts",
        "gold/personas",
        "gold/visual_preferences",
        "silver/user_images",
    ),
    outputs=("bench/rewrites",),
    section="rewrite,llm",
    engine="ray",
    run=run,
    summary="persona-conditioned rewriting (none/zero_shot/k_shot) and baselines (viper, history)",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
