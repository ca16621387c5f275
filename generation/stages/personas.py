"""Stages `personas` and `preferences`: each user's evidence (attention-ranked subreddits
and their best snippets, history only, under a token budget counted with each model's
tokenizer) verbalised by the configured LLM(s) into gold/personas, and ViPer-style
liked/disliked visual attributes into gold/visual_preferences.

Snippets come through `io.history("silver/snippets")`: the titles of the benchmark's
held-out reference posts and the comments under them are never evidence. Snippets the user
was downvoted for (score < 0) are kept out of the evidence; the preferences request gets
them apart, as `disliked`, ViPer's negative side. With `personas.images: K` the persona
request also shows up to K of the user's own history images (`generation.persona_images`:
image parts to a model that sees images, colour features to the template).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from contract.stage import Stage
from contract.stage_io import StageIO
from generation.persona_images import UserImages, with_image_note
from llm.llm_stage import Work, call_columns, finish, preflight, run_llm_chunks
from schemas.persona import REPLY_PARSERS, REPLY_SCHEMAS

PERSONA_FIELDS = ("demographics", "interests", "affective_traits", "visual_interests", "text")
PREFERENCE_FIELDS = ("likes", "dislikes")
#: planned columns a request's id already fixes (its messages quote the evidence): a row
#: reused from before keeps its own, so the driver need not hold them for every user
SLIM_PLAN = ("evidence", "evidence_tokens", "evidence_mode", "tokenizer")


def persona_users(io: StageIO) -> list[int]:
    """Users with attention rows: the benchmark's users first, then the most active
    others, capped by `personas.users` (all when unset)."""
    users = io.read("silver/users", ["user_id", "posts", "comments"])
    users = users.filter(
        pc.is_in(users["user_id"], pc.unique(io.read("gold/attention")["user_id"]))
    )
    bench = pc.is_in(users["user_id"], io.read("bench/users", ["user_id"])["user_id"])
    users = users.append_column("bench", bench).append_column(
        "activity", pc.add(users["posts"], users["comments"])
    )
    ids = users.sort_by(
        [("bench", "descending"), ("activity", "descending"), ("user_id", "ascending")]
    )["user_id"].to_pylist()
    cap = io.config.personas.users
    return sorted(ids[:cap] if cap else ids)


def user_keys(io: StageIO, user_ids: list[int]) -> dict[int, str]:
    """The content key (`generation.bench.name_key`) of each of `user_ids` by dense id:
    what a persona request names its user by, so a refresh that shifts dense ids
    resends nothing for a user whose evidence is unchanged."""
    from generation.bench import name_key

    users = io.read("silver/users", ["user_id", "author"])
    users = users.filter(pc.is_in(users["user_id"], pa.array(user_ids, users["user_id"].type)))
    ids, names = users["user_id"].to_pylist(), users["author"].to_pylist()
    return {u: name_key(a) for u, a in zip(ids, names, strict=True)}


class EvidenceSource:
    """What every chunk's evidence is built from, read once per stage run: attention,
    history snippets, subreddits, and the lake-wide statistics (common words, users) a
    chunk must not compute from its own users alone."""

    def __init__(self, io: StageIO):
        from generation.evidence import common_words

        self.attention = io.read("gold/attention")
        self.snippets = io.history("silver/snippets")
        self.subreddits = io.read("silver/subreddits")
        self.common = common_words(self.snippets)
        self.population = len(pc.unique(self.attention["user_id"]))


def evidence_for(io: StageIO, spec, users: list[int], src: EvidenceSource, cache: dict) -> list:
    """The users' evidence, counted with this model's tokenizer (cached per tokenizer)."""
    from generation.evidence import build_evidence
    from llm.tokens import counter, tokenizer_source

    source = tokenizer_source(spec.backend, spec.model, spec.tokenizer)
    if source not in cache:
        p = io.config.personas
        with io.console.status(f"evidence: {len(users):,} users, budget {p.token_budget:,}"):
            cache[source] = build_evidence(
                users,
                src.attention,
                src.snippets,
                src.subreddits,
                counter(source),
                budget=p.token_budget,
                mode=p.evidence,
                max_subreddits=p.max_subreddits,
                snippets_per_subreddit=p.snippets_per_subreddit,
                max_snippet_chars=p.max_snippet_chars,
                common=src.common,
                population=src.population,
            )
    return cache[source]


def _evidence_columns(ev, mode: str, tokenizer: str) -> dict:
    return {
        "user_id": ev.user_id,
        "evidence_mode": mode,
        "evidence_subreddits": ev.subreddits,
        "evidence_weights": ev.subreddit_weights,
        "evidence_ids": ev.snippet_ids,
        "evidence_tokens": ev.tokens,
        "tokenizer": tokenizer,
        "evidence": ev.text,
    }


def evidence_chunks(io: StageIO, task: str, fields: tuple[str, ...], version: str):
    """Per chunk of `personas.chunk_users` users, one `Work` per configured model: a
    `task` request per user's evidence; its rows carry the evidence, the reply's
    `fields` and the call's columns. Built lazily: the driver holds one chunk."""
    preflight(io.config.llm.specs())  # before any evidence is built
    users = persona_users(io)
    keys = user_keys(io, users)
    src = EvidenceSource(io)
    size = io.config.personas.chunk_users
    for start in range(0, len(users), size):
        yield evidence_work(io, task, fields, version, users[start : start + size], keys, src)


def evidence_work(
    io: StageIO,
    task: str,
    fields: tuple[str, ...],
    version: str,
    users: list[int],
    keys: dict[int, str],
    src: EvidenceSource,
) -> list[Work]:
    """One `Work` per configured model for `users`."""
    from generation.prompts import persona_messages, preferences_messages
    from llm import ChatRequest, backend_info, request_id
    from llm.tokens import tokenizer_source

    llm = io.config.llm
    k = io.config.personas.images if task == "persona" else 0
    shown = None  # the user's own history images (read after the evidence)
    rt = llm.runtime()
    mode = io.config.personas.evidence
    cache: dict = {}
    work = []
    for spec in llm.specs():
        evidence = evidence_for(io, spec, users, src, cache)
        if k and shown is None:
            shown = UserImages(io, users, k)
        tok = tokenizer_source(spec.backend, spec.model, spec.tokenizer)
        source = "template" if backend_info(spec.backend).template else "llm"
        shows = shown.mode(spec) if shown else None
        w = Work(spec)
        for ev in evidence:
            # the user by content key: a refresh shifts dense ids
            inputs = ev.request_inputs(keys[ev.user_id], version)
            if task == "preferences":
                inputs["disliked"] = ev.disliked
                messages = preferences_messages(ev.text, ev.disliked)
            else:
                messages = persona_messages(ev.text)
            images: tuple = ()
            if shows == "colours":  # the template says the images' colours and light
                inputs["image_colours"] = shown.colours(ev.user_id)
            elif shows == "parts":
                images = shown.parts(ev.user_id)
                messages = with_image_note(messages, len(images))
            rid = request_id(spec.label, task, messages, inputs, rt, spec.response_format, images)
            schema = REPLY_SCHEMAS[task]
            w.requests.append(
                ChatRequest(rid, task, messages, inputs, json=True, schema=schema, images=images)
            )
            w.planned[rid] = _evidence_columns(ev, mode, tok)
            if task == "preferences":  # the downvoted snippets are quoted too
                w.planned[rid]["evidence_ids"] = [*ev.snippet_ids, *ev.disliked_ids]
            if shows:  # the images shown are evidence too ("post_id:position")
                w.planned[rid]["evidence_ids"] = [*ev.snippet_ids, *shown.ids(shows, ev.user_id)]

        def to_row(req, res, spec=spec, planned=w.planned, source=source) -> dict:
            out = res["output"] or {}
            row = dict(planned[req.id])
            row |= {f: out.get(f) for f in fields}
            if "source" in fields:
                row["source"] = source
            return row | call_columns(spec, version, res)

        w.to_row = to_row
        work.append(w)
    return work


def personas(io: StageIO) -> None:
    """gold/attention + silver (history) -> gold/personas: one row per user and model;
    then the overrides users supplied (`personas.overrides`)."""
    from generation.overrides import apply_overrides, read_overrides
    from generation.prompts import PERSONA_VERSION

    chunks = evidence_chunks(io, "persona", (*PERSONA_FIELDS, "source"), PERSONA_VERSION)
    out = run_llm_chunks(
        io,
        "personas",
        "gold/personas",
        chunks,
        REPLY_PARSERS,
        settings=io.config.llm,
        slim_plan=SLIM_PLAN,
    )
    path = io.file("personas.overrides")
    if path is not None:
        out = apply_overrides(
            out,
            read_overrides(path),
            io.read("silver/users", ["user_id", "author"]),
            [s.label for s in io.config.llm.specs()],
            io.config.personas.evidence,
            path,
            blocked=io.names("ingest.blocklist"),
            skipped=io.details,
        )
    finish(io, "gold/personas", out, "personas")


def preferences(io: StageIO) -> None:
    """gold/attention + silver (history) -> gold/visual_preferences (ViPer baseline)."""
    from generation.prompts import PREFERENCES_VERSION

    chunks = evidence_chunks(io, "preferences", PREFERENCE_FIELDS, PREFERENCES_VERSION)
    out = run_llm_chunks(
        io,
        "preferences",
        "gold/visual_preferences",
        chunks,
        REPLY_PARSERS,
        settings=io.config.llm,
        slim_plan=SLIM_PLAN,
    )
    finish(io, "gold/visual_preferences", out, "preferences")


INPUTS = ("gold/attention", "silver/subreddits", "silver/users", "bench/users")


PERSONAS = Stage(
    name="personas",
    run=personas,
    engine="ray",
    inputs=INPUTS,
    # the user's own images shown with the evidence (personas.images), never a reference
    history=("silver/snippets", "silver/user_images", "silver/image_embeddings"),
    files=("personas.overrides", "ingest.blocklist"),  # overrides of deleted users skipped
    outputs=("gold/personas",),
    config=("personas", "llm", "images.allow_hosts", "images.timeout_s", "images.max_mb"),
    summary="evidence under a token budget -> LLM-verbalised personas (gold/personas)",
)


PREFERENCES = Stage(
    name="preferences",
    run=preferences,
    engine="ray",
    inputs=INPUTS,
    history=("silver/snippets",),
    outputs=("gold/visual_preferences",),
    config=("personas", "llm"),
    summary="liked/disliked visual attributes per user (ViPer baseline)",
)
