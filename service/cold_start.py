"""Cold start: a persona for a user the system has never seen, from the communities they
name, a few of their comments and images, with no retraining. The trained encoder embeds
them inductively over the lake's graph (`graph.cold_start`), its attention ranks their
subreddits, the evidence is built under the same token budget and with the same rules as
the `personas` stage (`generation.evidence`), and the configured LLM writes the persona
through the same validation and repair (`llm.fanout.process`); with a prompt, each
rewrite method a new user can have rewrites it.

`PersonaEngine` loads the lake's parts and the model once per process; `persona` is
then one small forward pass and one LLM call. Unknown subreddits are reported, not fatal.
A user who names no subreddit but brings a history (an external benchmark's prompts,
captions or rated titles: `NewUser.history`) gets evidence from that history alone
(`history_evidence`), under the same token budget, and the same LLM call.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from contract.stage_io import TableAccess
from schemas.persona import REPLY_PARSERS, REPLY_SCHEMAS

#: the rewrite methods a new user can have: what they need is a persona (or nothing) and,
#: for `viper`, the liked/disliked attributes of the same evidence
COLD_METHODS = ("none", "zero_shot", "viper")
#: the user id a new user's rows carry inside the engine (lake ids are >= 0)
NEW_USER = -1


class UnknownSubreddits(ValueError):
    """None of a new user's subreddits is in the lake's graph (the client's error)."""


@dataclass(frozen=True)
class NewUser:
    """What a new user gives: subreddit names, comments as (subreddit, text), images;
    or, with no subreddit, a history as (kind, text), oldest first (kind: "prompt",
    "rated 5/5", ...)."""

    subreddits: tuple[str, ...]
    comments: tuple[tuple[str, str], ...] = ()
    images: tuple[bytes, ...] = ()
    history: tuple[tuple[str, str], ...] = ()


@dataclass
class ColdStartPersona:
    """The persona of a new user and how it was made (no username anywhere)."""

    persona: dict | None
    status: str  # "done" or "failed"
    reason: str | None
    llm: str
    ranked: list[tuple[str, float]]  # known subreddits, attention order (name, attention)
    unknown_subreddits: list[str]
    evidence_tokens: int
    evidence: str
    rewrites: dict[str, str] = field(default_factory=dict)
    negative_prompts: dict[str, str | None] = field(default_factory=dict)
    seconds: float = 0.0
    embedding: list[float] = field(default_factory=list)

    def public(self) -> dict:
        """What a response or a printout shows (the embedding and evidence left out)."""
        return {
            "persona": self.persona,
            "status": self.status,
            "reason": self.reason,
            "llm": self.llm,
            "subreddits": [{"name": n, "attention": round(a, 4)} for n, a in self.ranked],
            "unknown_subreddits": self.unknown_subreddits,
            "evidence_tokens": self.evidence_tokens,
            "rewrites": self.rewrites,
            "seconds": round(self.seconds, 3),
        }


def _key(name: str) -> str:
    """How a named subreddit is matched: case-insensitive, an ``r/`` prefix ignored."""
    name = name.strip()
    if name.lower().startswith("/r/"):
        name = name[3:]
    elif name.lower().startswith("r/"):
        name = name[2:]
    return name.strip("/ ").lower()


def read_comments(path: Path) -> list[tuple[str, str]]:
    """A comments file: one comment per line as ``subreddit<TAB>text`` or JSON lines
    ``{"subreddit": ..., "text": ...}``; ValueError naming the first bad line."""
    import json

    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                row = json.loads(line)
                sub, text = str(row["subreddit"]), str(row["text"])
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{n}: not a {{subreddit, text}} JSON line ({e})") from e
        elif "\t" in line:
            sub, text = line.split("\t", 1)
        else:
            raise ValueError(f"{path}:{n}: expected 'subreddit<TAB>text' or a JSON line")
        out.append((sub, text))
    return out


def fetch_images(urls: list[str], images_cfg: Any) -> tuple[list[bytes], list[dict]]:
    """A client's image URLs fetched with the hostile-URL rules of the `images` config
    section (`media.fetch.fetch_image`: public addresses only unless allowlisted, size,
    time and pixel caps): (the images fetched, {url, reason} for each one refused)."""
    from media.fetch import FetchError, fetch_image

    got, failed = [], []
    for url in urls:
        try:
            got.append(
                fetch_image(
                    url,
                    images_cfg.allow_hosts,
                    timeout=images_cfg.timeout_s,
                    max_bytes=images_cfg.max_mb << 20,
                    retries=images_cfg.retries,
                )
            )
        except (FetchError, ValueError) as e:
            failed.append({"url": url, "reason": getattr(e, "reason", "invalid")})
    return got, failed


def llm_parts(cfg: Any) -> tuple[Any, Any, Any]:
    """(runtime, backend, token counter) of the configured LLM (its first spec), built in
    the calling process: what the engine and the service's endpoint rewriter call."""
    from llm import make_backend, read_api_key
    from llm.tokens import counter, tokenizer_source

    spec = cfg.llm.specs()[0]
    runtime = cfg.llm.runtime()
    backend = make_backend(
        spec.backend,
        spec.model,
        spec.base_url,
        read_api_key(spec.api_key_env),
        runtime,
        response_format=spec.response_format,
    )
    return runtime, backend, counter(tokenizer_source(spec.backend, spec.model, spec.tokenizer))


async def rewrite_with(
    backend: Any,
    count: Any,
    label: str,
    runtime: Any,
    persona: dict | None,
    prompt: str,
    method: str,
    likes=(),
    dislikes=(),
) -> tuple[str, str | None]:
    """(rewritten prompt, negative prompt) of `prompt` by `method` (`COLD_METHODS`) for a
    persona, through `backend` with the rewrite stage's request and validation; written
    once for the engine and the service's own endpoint rewriter (`service.rewriter`)."""
    from generation.rewrite import REPLY_PARSERS as REWRITE_PARSERS
    from generation.rewrite import RewriteJob, rewrite_request, viper_prompt
    from llm.fanout import process

    if method not in COLD_METHODS:
        raise ValueError(f"method {method!r}: a new user can have {', '.join(COLD_METHODS)}")
    if method == "viper":
        return viper_prompt(prompt, list(likes), list(dislikes))
    job = RewriteJob(NEW_USER, "p", method, prompt, key="new-user")
    req = rewrite_request(job, persona, label, runtime)
    res = (await process(backend, [req], count, REWRITE_PARSERS))[0]
    if res["status"] != "done":
        raise ValueError(f"the rewrite failed: {res['reason']}")
    return res["output"], None


class PersonaEngine:
    """The lake's graph, encoder, subreddits and LLM, loaded once: personas on demand."""

    def __init__(self, cfg: Any):
        """`cfg`: the composed config (`jobs.config.ZippConfig`): its lake, encoder,
        personas, llm, images and rewrite sections."""
        from generation.evidence import common_words
        from graph.artifacts import MODEL_FILE
        from graph.cold_start import InductiveEncoder
        from graph.train import HISTORY_TABLES, INPUT_TABLES
        from llm import backend_info

        self.cfg = cfg
        root = str(cfg.lake.root)
        self.tables = TableAccess(
            stage="serve",
            root=root,
            format=cfg.lake.format,
            inputs=frozenset(
                (*INPUT_TABLES, "bench/references", "gold/attention", "gold/personas")
            ),
            history_inputs=frozenset((*HISTORY_TABLES, "silver/snippets")),
        )
        model_file = Path(root) / "models/encoder" / MODEL_FILE
        self.encoder = InductiveEncoder.load(self.tables, model_file, cfg.encoder.inference_chunk)
        self.subreddits = self.tables.read("silver/subreddits")
        self.names = dict(  # dense id -> name, and the names' keys -> id, built once
            zip(
                self.subreddits["subreddit_id"].to_pylist(),
                self.subreddits["subreddit"].to_pylist(),
                strict=True,
            )
        )
        self.ids = {_key(n): i for i, n in self.names.items()}
        self.population = self.tables.read("silver/users", ["user_id"]).num_rows
        self.common = common_words(self.tables.history("silver/snippets", ["subreddit_id", "text"]))
        emb = self.tables.history("silver/image_embeddings", ["encoder", "status"])
        ok = emb.filter(pa.compute.equal(emb["status"], "ok"))
        self.image_encoder = ok["encoder"][0].as_py() if ok.num_rows else None
        self.spec = cfg.llm.specs()[0]
        info = backend_info(self.spec.backend)
        callable_here = info.template or info.endpoint or self.spec.backend == "hf"
        if info.runs_in != "driver" and not callable_here:
            raise ValueError(
                f"llm.backend {self.spec.backend!r} runs in Ray actors only; personas on "
                "demand need a backend one process can call (template, openai, hf)"
            )
        self.template = info.template
        self.runtime, self.backend, self.counter = llm_parts(cfg)
        #: one event loop for every call: the backend's HTTP session and gates belong to
        #: the loop they were made on (callers serialise their use of the engine)
        self._loop = asyncio.new_event_loop()

    def _run(self, coro):
        """Run one of the backend's coroutines on the engine's own event loop."""
        return self._loop.run_until_complete(coro)

    def close(self) -> None:
        """Close the backend's connections (an HTTP session) and the event loop."""
        aclose = getattr(self.backend, "aclose", None)
        if aclose is not None:
            self._run(aclose())
        self._loop.close()

    # -- the steps -------------------------------------------------------------------

    def resolve(self, names: list[str]) -> tuple[list[int], list[str]]:
        """(known dense ids in the order given, each once; the unknown names)."""
        known: list[int] = []
        unknown: dict[str, str] = {}  # key -> the name as first given
        for n in names:
            sid = self.ids.get(_key(n))
            if sid is None:
                unknown.setdefault(_key(n), n)
            elif sid not in known:
                known.append(sid)
        return known, list(unknown.values())

    def visual_profile(self, images: tuple[bytes, ...]) -> np.ndarray | None:
        """The mean embedding of the images in the lake's image feature space."""
        from media.image_embed import embed_payloads

        if not images or not self.image_encoder:
            return None
        return embed_payloads(self.image_encoder, list(images)).mean(0)

    def history_evidence(self, user: NewUser):
        """Evidence from a history alone (no subreddit), one line per item, the newest
        kept first when the persona token budget is short."""
        from generation.evidence import Evidence

        p = self.cfg.personas
        items = [(k, " ".join(t.split())[: p.max_snippet_chars]) for k, t in user.history]
        items = [(k, t) for k, t in items if t]
        header = f"## Their own history ({len(items)} items, oldest first)\n"
        lines = [f"- [{k}] {t}\n" for k, t in items]
        costs = self.counter.count([header, *lines]) if lines else [0]
        used, kept = costs[0], []
        for i in reversed(range(len(lines))):
            if used + costs[i + 1] <= p.token_budget:
                kept.append(i)
                used += costs[i + 1]
        kept.sort()
        while True:
            text = (header + "".join(lines[i] for i in kept)).strip() if kept else ""
            tokens = self.counter.count([text])[0] if text else 0
            if tokens <= p.token_budget or not kept:
                break
            kept.pop(0)  # merges at line joins can add a token or two
        words = {w for i in kept for w in items[i][1].lower().split()}
        return Evidence(
            user_id=NEW_USER,
            text=text,
            tokens=tokens,
            snippets=[items[i][1] for i in kept],
            snippet_ids=[f"history-{i}" for i in kept],
            common_words=sorted(words & self.common),
        )

    def evidence(self, user: NewUser):
        """(the new user's `generation.evidence.Evidence`, ranked, unknown names, the
        inductive embedding or None for a history-only user)."""
        from generation.evidence import build_evidence

        if user.history and not (user.subreddits or user.comments):
            return self.history_evidence(user), [], [], None
        named = list(user.subreddits) + [s for s, _ in user.comments]
        known, unknown = self.resolve(named)
        if not known:
            raise UnknownSubreddits(
                "none of the subreddits is in the lake's graph: "
                + ", ".join(sorted(set(unknown))[:10])
            )
        per_sub: dict[int, list[str]] = {s: [] for s in known}
        for sub, text in user.comments:
            sid = self.ids.get(_key(sub))
            if sid is not None and text.strip():
                per_sub[sid].append(" ".join(text.split()))
        cold = self.encoder.embed(
            known,
            posts=[0] * len(known),
            comments=[max(1, len(per_sub[s])) for s in known],
            visual=self.visual_profile(user.images),
        )
        k = len(cold.subreddit_ids)
        attention = pa.table(
            {
                "user_id": pa.array([NEW_USER] * k, pa.int32()),
                "subreddit_id": pa.array(cold.subreddit_ids, pa.int32()),
                "attention": pa.array(cold.attention, pa.float32()),
                "rank": pa.array(range(1, k + 1), pa.int32()),
                "posts": pa.array([0] * k, pa.int64()),
                "comments": pa.array([len(per_sub[s]) for s in cold.subreddit_ids], pa.int64()),
            }
        )
        rows = [(s, i, text) for s in cold.subreddit_ids for i, text in enumerate(per_sub[s], 1)]
        snippets = pa.table(
            {
                "user_id": pa.array([NEW_USER] * len(rows), pa.int32()),
                "subreddit_id": pa.array([s for s, _, _ in rows], pa.int32()),
                "record_id": pa.array([f"new-{s}-{i}" for s, i, _ in rows], pa.string()),
                "post_id": pa.array([None] * len(rows), pa.string()),
                "source": pa.array(["comment"] * len(rows), pa.string()),
                "text": pa.array([t for _, _, t in rows], pa.string()),
                "score": pa.array([1] * len(rows), pa.int64()),
                "rank": pa.array([i for _, i, _ in rows], pa.int32()),
                "created_utc": pa.array([0] * len(rows), pa.int64()),
            }
        )
        p = self.cfg.personas
        ev = build_evidence(
            [NEW_USER],
            attention,
            snippets,
            self.subreddits,
            self.counter,
            budget=p.token_budget,
            mode=p.evidence,
            max_subreddits=p.max_subreddits,
            snippets_per_subreddit=p.snippets_per_subreddit,
            max_snippet_chars=p.max_snippet_chars,
            common=self.common,
            population=self.population,
        )[0]
        names = self.names
        ranked = [(names[s], a) for s, a in zip(cold.subreddit_ids, cold.attention, strict=True)]
        return ev, ranked, unknown, cold

    def _ask(self, task: str, ev, user: NewUser) -> dict:
        """One persona or preferences request through validation and one repair."""
        from generation.prompts import (
            PERSONA_VERSION,
            PREFERENCES_VERSION,
            persona_messages,
            preferences_messages,
        )
        from llm import ChatRequest, request_id
        from llm.fanout import process

        version = PERSONA_VERSION if task == "persona" else PREFERENCES_VERSION
        inputs = ev.request_inputs("new-user", version)
        if task == "persona":
            messages = persona_messages(ev.text)
            if self.template and user.images:
                from media.image_features import colour_features, named_colours

                inputs["image_colours"] = [named_colours(colour_features(b)) for b in user.images]
        else:
            inputs["disliked"] = []
            messages = preferences_messages(ev.text, [])
        rid = request_id(
            self.spec.label, task, messages, inputs, self.runtime, self.spec.response_format
        )
        req = ChatRequest(rid, task, messages, inputs, json=True, schema=REPLY_SCHEMAS[task])
        return self._run(process(self.backend, [req], self.counter.count, REPLY_PARSERS))[0]

    def preferences(self, user: NewUser) -> tuple[list[str], list[str]]:
        """The new user's liked and disliked visual attributes (ViPer's side, what the
        `preferences` stage makes), from the same evidence; ValueError when the LLM's
        reply fails validation after its repair."""
        ev, *_ = self.evidence(user)
        res = self._ask("preferences", ev, user)
        if res["status"] != "done":
            raise ValueError(f"the preferences failed: {res['reason']}")
        return list(res["output"]["likes"]), list(res["output"]["dislikes"])

    def rewrite(
        self, persona: dict | None, prompt: str, method: str, likes=(), dislikes=()
    ) -> tuple[str, str | None]:
        """(rewritten prompt, negative prompt) of `prompt` by `method` for this persona."""
        return self._run(
            rewrite_with(
                self.backend, self.counter.count, self.spec.label, self.runtime,
                persona, prompt, method, likes, dislikes,
            )
        )  # fmt: skip

    def persona(
        self, user: NewUser, prompt: str | None = None, methods: tuple[str, ...] = COLD_METHODS
    ) -> ColdStartPersona:
        """The new user's persona (and, with `prompt`, its rewrite by each method)."""
        t0 = time.perf_counter()
        ev, ranked, unknown, cold = self.evidence(user)
        res = self._ask("persona", ev, user)
        out = ColdStartPersona(
            persona=res["output"] if res["status"] == "done" else None,
            status=res["status"],
            reason=res["reason"],
            llm=self.spec.label,
            ranked=ranked,
            unknown_subreddits=unknown,
            evidence_tokens=ev.tokens,
            evidence=ev.text,
            embedding=cold.embedding.tolist() if cold is not None else [],
        )
        if prompt and out.persona is not None:
            likes: tuple = ()
            dislikes: tuple = ()
            if "viper" in methods:
                pref = self._ask("preferences", ev, user)
                if pref["status"] == "done":
                    likes, dislikes = pref["output"]["likes"], pref["output"]["dislikes"]
            for m in methods:
                text, negative = self.rewrite(out.persona, prompt, m, likes, dislikes)
                out.rewrites[m], out.negative_prompts[m] = text, negative
        out.seconds = time.perf_counter() - t0
        return out
