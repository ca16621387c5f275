"""Stages `personas` and `preferences` (Ray): evidence under a token budget, verbalised
by the configured LLM(s) into gold/personas, and ViPer-style liked/disliked visual
attributes into gold/visual_preferences.

python -m jobs.personas personas|preferences -c conf/cluster.yaml [key=value ...]
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from jobs.config import LLMSpec
from jobs.llm_stage import Work, call_columns, finish, run_llm_stage
from jobs.runner import Stage, StageContext

INPUTS = ("gold/attention", "silver/snippets", "silver/subreddits", "silver/users", "bench/users")


def history_snippets(ctx: StageContext):
    """silver/snippets minus the benchmark users' held-out reference posts (their titles
    must not leak into the personas the benchmark scores against those images)."""
    snippets = ctx.lake.read("silver/snippets")
    held = [
        ref.split(":")[0]
        for refs in ctx.lake.read("bench/users")["references"].to_pylist()
        for ref in refs
    ]
    if not held:
        return snippets
    return snippets.filter(pc.invert(pc.is_in(snippets["record_id"], pa.array(held))))


def persona_users(ctx: StageContext) -> list[int]:
    """Users with attention rows, most active first, capped by `personas.users`."""
    users = ctx.lake.read("silver/users")
    has = pc.is_in(users["user_id"], pc.unique(ctx.lake.read("gold/attention")["user_id"]))
    users = users.filter(has)
    activity = pc.add(users["posts"], users["comments"])
    users = users.append_column("activity", activity).sort_by(
        [("activity", "descending"), ("user_id", "ascending")]
    )
    ids = users["user_id"].to_pylist()
    cap = ctx.config.personas.users
    return sorted(ids[:cap] if cap else ids)


def evidence_for(ctx: StageContext, spec: LLMSpec, users: list[int], cache: dict) -> list:
    """Each user's evidence, counted with this model's tokenizer (cached per tokenizer)."""
    from generation.evidence import build_evidence
    from generation.tokens import counter, tokenizer_source

    source = tokenizer_source(spec.backend, spec.model, spec.tokenizer)
    if source not in cache:
        p = ctx.config.personas
        with ctx.console.status(f"evidence: {len(users):,} users, budget {p.token_budget:,}"):
            cache[source] = build_evidence(
                users,
                ctx.lake.read("gold/attention"),
                history_snippets(ctx),
                ctx.lake.read("silver/subreddits"),
                counter(source),
                budget=p.token_budget,
                mode=p.evidence,
                max_subreddits=p.max_subreddits,
                snippets_per_subreddit=p.snippets_per_subreddit,
                max_snippet_chars=p.max_snippet_chars,
            )
    return cache[source]


def _evidence_columns(ev, mode: str, tokenizer: str) -> dict:
    return {
        "user_id": ev.user_id,
        "evidence_mode": mode,
        "evidence_subreddits": ev.subreddits,
        "evidence_ids": ev.snippet_ids,
        "evidence_tokens": ev.tokens,
        "tokenizer": tokenizer,
        "evidence": ev.text,
    }


def _work(ctx: StageContext, task: str, fields: tuple[str, ...], version: str) -> list[Work]:
    from generation.llm import ChatRequest, request_id
    from generation.prompts import persona_messages, preferences_messages
    from generation.tokens import tokenizer_source
    from jobs.llm_stage import preflight, runtime

    preflight(ctx.config.llm.specs())
    messages_for = {"persona": persona_messages, "preferences": preferences_messages}[task]
    users = persona_users(ctx)
    rt = runtime(ctx.config.llm)
    mode = ctx.config.personas.evidence
    cache: dict = {}
    work = []
    for spec in ctx.config.llm.specs():
        evidence = evidence_for(ctx, spec, users, cache)
        tok = tokenizer_source(spec.backend, spec.model, spec.tokenizer)
        by_id: dict[str, object] = {}
        w = Work(spec)
        for ev in evidence:
            messages = messages_for(ev.text)
            inputs = {
                "user": ev.user_id,
                "subreddits": ev.subreddit_names,
                "snippets": ev.snippets,
                "snippet_ranks": ev.snippet_ranks,
                "v": version,
            }
            rid = request_id(spec.label, task, messages, inputs, rt)
            by_id[rid] = ev
            w.requests.append(ChatRequest(rid, task, messages, inputs, json=True))

        def to_row(req, res, spec=spec, by_id=by_id, tok=tok) -> dict:
            out = res["output"] or {}
            row = _evidence_columns(by_id[req.id], mode, tok)
            row |= {f: out.get(f) for f in fields}
            if "source" in fields:
                row["source"] = "template" if spec.backend == "template" else "llm"
            return row | call_columns(spec, version, res)

        w.to_row = to_row
        work.append(w)
    return work


PERSONA_FIELDS = ("demographics", "interests", "affective_traits", "visual_interests", "text")


def personas(ctx: StageContext) -> None:
    """gold/attention + silver -> gold/personas: one row per user and model."""
    from generation.prompts import PERSONA_VERSION

    work = _work(ctx, "persona", (*PERSONA_FIELDS, "source"), PERSONA_VERSION)
    out = run_llm_stage(ctx, "personas", "gold/personas", work)
    if ctx.config.personas.overrides:
        out = apply_overrides(ctx, out)
    finish(ctx, "gold/personas", out, "personas")


def apply_overrides(ctx: StageContext, out: pa.Table) -> pa.Table:
    """Replace persona fields by those a user supplied (personas.overrides), for every
    model; a user with no persona row gets one. Unknown users are an error."""
    from generation.persona import read_overrides

    path = ctx.config.personas.overrides
    users = ctx.lake.read("silver/users")
    by_author = dict(zip(users["author"].to_pylist(), users["user_id"].to_pylist(), strict=True))
    known = set(users["user_id"].to_pylist())
    rows = out.to_pylist()
    index = {(r["user_id"], r["llm"]): r for r in rows}
    for ov in read_overrides(path):
        uid = ov["user_id"] if ov["user_id"] is not None else by_author.get(ov["author"])
        if uid not in known:
            who = ov["user_id"] if ov["user_id"] is not None else ov["author"]
            raise ValueError(f"personas.overrides: {path}: no user {who!r} in silver/users")
        for spec in ctx.config.llm.specs():
            row = index.get((uid, spec.label))
            if row is None:
                row = _blank_row(uid, spec, ctx.config.personas.evidence)
                rows.append(row)
                index[(uid, spec.label)] = row
            for f in ov["given"]:
                row[f] = ov[f]
            row.update(source="override", status="done", reason=None, raw=None)
    return pa.Table.from_pylist(rows, schema=out.schema)


def _blank_row(uid: int, spec: LLMSpec, mode: str) -> dict:
    import hashlib

    return {
        "user_id": uid,
        "demographics": None,
        "interests": [],
        "affective_traits": [],
        "visual_interests": [],
        "text": None,
        "evidence_mode": mode,
        "evidence_subreddits": [],
        "evidence_ids": [],
        "evidence_tokens": 0,
        "tokenizer": "none",
        "evidence": "",
        "llm": spec.label,
        "template": False,
        "prompt_version": "override",
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "attempts": 0,
        "seconds": 0.0,
        "request_id": hashlib.sha1(f"override:{uid}:{spec.label}".encode()).hexdigest()[:24],
    }


def preferences(ctx: StageContext) -> None:
    """gold/attention + silver -> gold/visual_preferences (ViPer baseline's input)."""
    from generation.prompts import PREFERENCES_VERSION

    work = _work(ctx, "preferences", ("likes", "dislikes"), PREFERENCES_VERSION)
    out = run_llm_stage(ctx, "preferences", "gold/visual_preferences", work)
    finish(ctx, "gold/visual_preferences", out, "preferences")


PERSONAS = Stage(
    name="personas",
    inputs=(*INPUTS, "file:personas.overrides"),
    outputs=("gold/personas",),
    section="personas,llm",
    engine="ray",
    run=personas,
    summary="evidence under a token budget -> LLM-verbalised personas (gold/personas)",
)

PREFERENCES = Stage(
    name="preferences",
    inputs=INPUTS,
    outputs=("gold/visual_preferences",),
    section="personas,llm",
    engine="ray",
    run=preferences,
    summary="liked/disliked visual attributes per user (ViPer baseline)",
)

if __name__ == "__main__":
    from jobs.entry import stages_main

    stages_main("jobs.personas", PERSONAS, PREFERENCES)
