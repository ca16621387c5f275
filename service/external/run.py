"""`zipp bench external NAME`: a user-history benchmark (pip, pickapic, movielens) made
into ZIPBench rows. Per user: a persona from their history alone through the cold start
(`service.cold_start.PersonaEngine`, the configured LLM), each cold method's rewrite of
each held-out item's base prompt, images rendered by the configured diffusion model
(`service.images.ImageRenderer`), scored like stage `score` (CLIPScore vs the held-out
references and vs the prompt, the learned preference judge fitted on these users'
history images) -> bench/{users,references,prompts,rewrites,images,scores} and the
report under the lake's ``external/<name>/``; ZIPBench's own tables are not touched.
References that cannot be had (an expired link) are counted, not fatal. The LLM judge
does not run here (its rows say ``skipped``)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from evaluation.external import ExternalBench
from schemas.bench import BENCH_IMAGES, BENCH_PROMPTS, BENCH_REFERENCES, BENCH_USERS, REWRITES
from schemas.persona import NO_LLM
from service.external.common import digest, embed, external_lake, skipped_judge
from storage.lake import Lake

#: history images per user fetched for the preference judge (newest first)
HISTORY_IMAGES = 8


def run_external(
    cfg: Any,
    name: str,
    path: str | Path | None,
    console: Any,
    references: int = 1,
    users: int | None = 20,
    pairs: int | None = 200,
    engine=None,
) -> dict:
    """Parse benchmark `name` under `path` (movielens: recbole's packaged MovieLens-100K
    when None) and run it; returns the run's summary (the report's path in it)."""
    from importlib import import_module

    from service.external import NAMES

    if name not in NAMES:
        raise ValueError(f"unknown external benchmark {name!r}; have: {', '.join(NAMES)}")
    if path is None and name != "movielens":
        raise ValueError(f"{name}: --path is required (the benchmark's downloaded files)")
    module = import_module(f"service.external.{name}")
    if name == "rapidata":
        from service.external.votes import run_rapidata

        found = module.load(Path(path), pairs)
        if not found:
            raise ValueError(f"rapidata: no pair in {path}")
        return run_rapidata(cfg, found, console)
    bench = module.load(Path(path) if path is not None else None, references, users)
    if not bench.references.num_rows:
        raise ValueError(f"{name}: no user with a history and an item to hold out in {path}")
    return run_history(cfg, bench, module.kind, console, engine)


def user_number(user: str) -> int:
    """A benchmark's user id as the bench tables' int32: the number itself when it is
    one, else 31 bits of its digest (named by content, never by a dense rank)."""
    if user.isdigit() and int(user) < 2**31:
        return int(user)
    return int(hashlib.sha256(user.encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def run_history(cfg: Any, bench: ExternalBench, kind, console: Any, engine=None) -> dict:
    """Personas, rewrites, images and scores of a parsed user-history benchmark; the
    tables and report under ``external/<name>/``; returns the run's summary."""
    from service.cold_start import COLD_METHODS, PersonaEngine
    from service.external.images import all_bytes
    from service.images import ImageRenderer

    name = bench.name
    renderer = ImageRenderer(cfg)  # finds the configured model or the lake's smoke model
    model = renderer.model()
    if model is None:
        raise FileNotFoundError(renderer.missing())
    own_engine = engine is None
    engine = engine or PersonaEngine(cfg)
    lake = external_lake(cfg, name)
    history = _by_user(bench.history)
    refs = _by_user(bench.references)
    prompts = _by_user(bench.prompts)
    ids = {u: user_number(u) for u in refs}
    if len(set(ids.values())) != len(ids):
        raise ValueError(f"{name}: two user ids map to one bench user id")
    t0 = time.perf_counter()
    with console.status(f"{name}: reading {sum(map(len, refs.values()))} references"):
        got_refs = dict(zip(refs, (all_bytes(refs[u], cfg.images) for u in refs), strict=True))
        wanted = {u: [i for i in history[u] if _has_image(i)][-HISTORY_IMAGES:] for u in refs}
        got_hist = {u: all_bytes(wanted[u], cfg.images) for u in refs}
    encoder = engine.image_encoder or cfg.images.model or _colour()
    ref_vecs = {u: embed(encoder, [b for b, _ in got_refs[u] if b]) for u in refs}
    hist_vecs = {ids[u]: embed(encoder, [b for b, _ in got_hist[u] if b]) for u in refs}
    rows = _Rows()
    personas: dict[int, dict | None] = {}
    try:
        for u in refs:
            uid, key = ids[u], _user_key(refs[u])
            rows.user(uid, name, sum(1 for b, _ in got_hist[u] if b), refs[u])
            persona, likes, dislikes = _persona(engine, cfg, history[u], got_hist[u], kind)
            personas[uid] = persona
            for p in prompts[u]:
                rows.prompt(uid, p, name)
                made = [("base", NO_LLM, p["prompt"], None)]
                for m in COLD_METHODS:
                    text, neg = rows.rewrite(engine, uid, key, p, m, persona, likes, dislikes)
                    if text is not None:
                        made.append((m, engine.spec.label, text, neg))
                for method, llm, text, neg in made:
                    rows.plan_images(model, cfg, key, uid, p, method, llm, text, neg)
    finally:
        if own_engine:
            engine.close()
    with console.status(f"{name}: rendering {len(rows.planned)} images"):
        rows.render(cfg, model, lake)
    scores = _scores(cfg, rows.images, lake, encoder, ref_vecs, ids, hist_vecs)
    for table, data, schema in (
        ("bench/users", rows.users, BENCH_USERS),
        ("bench/references", rows.references, BENCH_REFERENCES),
        ("bench/prompts", rows.prompts, BENCH_PROMPTS),
        ("bench/rewrites", rows.rewrites, REWRITES),
        ("bench/images", rows.images, BENCH_IMAGES),
    ):
        lake.write_table(table, pa.Table.from_pylist(data, schema))
    lake.write_table("bench/scores", scores)
    failed_refs = sum(1 for u in refs for b, _ in got_refs[u] if b is None)
    summary = {
        "benchmark": name,
        "users": len(refs),
        "prompts": len(rows.prompts),
        "references": sum(map(len, refs.values())),
        "failed_references": failed_refs,
        "personas_failed": sum(1 for p in personas.values() if p is None),
        "rewrites_failed": sum(1 for r in rows.rewrites if r["status"] != "done"),
        "images": len(rows.images),
        "images_failed": sum(1 for r in rows.images if r["status"] != "done"),
        "encoder": encoder,
        "seconds": round(time.perf_counter() - t0, 1),
        **bench.notes,
    }
    from service.external.report import history_report

    summary["report"] = str(
        history_report(
            lake, cfg, scores, rows, personas, {u: ref_vecs[k] for k, u in ids.items()}, summary
        )  # fmt: skip
    )
    return summary


def _no_query(url: str | None) -> str | None:
    """A URL without its query and fragment (a signed link's secret is there)."""
    if not url:
        return url
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(url)._replace(query="", fragment=""))


def _colour() -> str:
    from media.image_embed import COLOUR

    return COLOUR


def _has_image(item: dict) -> bool:
    return bool(item.get("image") or item.get("image_path") or item.get("image_url"))


def _by_user(t: pa.Table) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in t.to_pylist():
        out.setdefault(r["user_id"], []).append(r)
    return out


def _user_key(refs: list[dict]) -> str:
    from generation.diffusion import user_key

    return user_key([r["item_id"] for r in refs])


def _persona(engine, cfg: Any, history: list[dict], images: list, kind) -> tuple:
    """(persona or None, likes, dislikes) of one user from their history alone."""
    from service.cold_start import NewUser

    shown = tuple(b for b, _ in images if b)[-cfg.personas.images :] if cfg.personas.images else ()
    user = NewUser(subreddits=(), history=tuple((kind(i), i["title"]) for i in history),
                   images=shown)  # fmt: skip
    made = engine.persona(user)
    if made.persona is None:
        return None, (), ()
    try:
        likes, dislikes = engine.preferences(user)
    except ValueError:
        likes, dislikes = [], []
    return made.persona, likes, dislikes


class _Rows:
    """The bench tables' rows as they are made."""

    def __init__(self) -> None:
        self.users: list[dict] = []
        self.references: list[dict] = []
        self.prompts: list[dict] = []
        self.rewrites: list[dict] = []
        self.images: list[dict] = []
        self.planned: list[tuple[dict, Any]] = []  # (bench/images row, RenderJob)

    def user(self, uid: int, name: str, images: int, refs: list[dict]) -> None:
        """A bench/users row and its held-out items' bench/references rows."""
        self.users.append(
            {
                "user_id": uid,
                "stratum": f"external:{name}",
                "images": images,
                "references": [f"{r['item_id']}:1" for r in refs],
            }
        )
        for r in refs:
            self.references.append(
                {
                    "user_id": uid,
                    "post_id": r["item_id"],
                    "position": 1,
                    "image_url": _no_query(r.get("image_url")) or r.get("image_path") or "",
                    "created_utc": int(r["timestamp"]),
                    "subreddit_id": None,
                }
            )

    def prompt(self, uid: int, p: dict, name: str) -> None:
        self.prompts.append(
            {"prompt_id": p["prompt_id"], "user_id": uid, "prompt": p["prompt"], "source": name}
        )

    def rewrite(self, engine, uid, key, p, method, persona, likes, dislikes):
        """One cold method's rewrite row; (text, negative) or (None, None) when failed."""
        from generation.prompts import REWRITE_VERSION

        t0 = time.perf_counter()
        text = neg = reason = None
        if persona is None and method != "none":
            reason = "no persona (its LLM call failed)"
        else:
            try:
                text, neg = engine.rewrite(persona, p["prompt"], method, likes, dislikes)
            except ValueError as e:
                reason = str(e)
        self.rewrites.append(
            {
                "rewrite_id": digest(key, p["prompt_id"], method, engine.spec.label),
                "user_id": uid,
                "prompt_id": p["prompt_id"],
                "method": method,
                "base_prompt": p["prompt"],
                "prompt": text,
                "negative_prompt": neg,
                "examples": [],
                "llm": engine.spec.label,
                "template": bool(engine.template),
                "status": "done" if text is not None else "failed",
                "reason": reason,
                "prompt_version": REWRITE_VERSION,
                "prompt_tokens": 0,  # the engine's rewrite call does not report them
                "completion_tokens": 0,
                "attempts": 1,
                "seconds": time.perf_counter() - t0,
                "request_id": digest("rewrite", key, p["prompt_id"], method),
            }
        )
        return text, neg

    def plan_images(self, model, cfg, key, uid, p, method, llm, text, neg) -> None:
        """`diffusion.seeds` images of one prompt to render (`render`)."""
        from generation.diffusion import RenderJob, record_seed

        for k in range(cfg.diffusion.seeds):
            seed = record_seed(key, p["prompt_id"], k)
            row = {
                "image_id": digest(key, p["prompt_id"], method, llm, k, model),
                "user_id": uid,
                "prompt_id": p["prompt_id"],
                "method": method,
                "llm": llm,
                "seed_index": k,
                "seed": seed,
                "prompt": text,
                "negative_prompt": neg,
                "model": model,
                "smoke_model": cfg.diffusion.model is None,
            }
            self.planned.append((row, RenderJob(row["image_id"], text, neg, seed)))

    def render(self, cfg, model: str, lake: Lake) -> None:
        """Every planned image rendered by the configured pipeline, `diffusion.batch_size`
        per call, stored under the lake's media/ -> bench/images rows (a batch that fails
        makes its rows ``failed`` with the reason)."""
        from generation.diffusion import image_path, load_pipeline, png_bytes, render, render_spec

        if not self.planned:
            return
        spec = render_spec(cfg.diffusion, model)
        pipe = load_pipeline(spec)
        size = spec.batch_size
        for i in range(0, len(self.planned), size):
            batch = self.planned[i : i + size]
            t0 = time.perf_counter()
            try:
                made = render(pipe, spec, [j for _, j in batch])
            except (RuntimeError, ValueError, OSError) as e:
                for row, _ in batch:
                    failed = {"status": "failed", "reason": str(e)[:300], "seconds": 0.0}
                    self.images.append(row | failed)
                continue
            share = (time.perf_counter() - t0) / len(batch)
            for (row, _), image in zip(batch, made, strict=True):
                png = png_bytes(image)
                sha = hashlib.sha256(png).hexdigest()
                rel = image_path(sha)
                (lake.root / rel).parent.mkdir(parents=True, exist_ok=True)
                (lake.root / rel).write_bytes(png)
                done = {"status": "done", "path": rel, "sha256": sha, "seconds": share}
                self.images.append(row | done | {"width": image.width, "height": image.height})
        self.planned = []


def _scores(cfg, images: list[dict], lake: Lake, encoder: str, ref_vecs, ids, hist_vecs):
    """bench/scores: each made image as stage `score` scores it (the LLM judge skipped)."""
    from evaluation.scorers import image_score_row, preference_scores, prompt_scores
    from schemas.bench import BENCH_SCORES

    done = [r for r in images if r["status"] == "done"]
    vecs = embed(encoder, [(lake.root / r["path"]).read_bytes() for r in done])
    clip_prompt = prompt_scores(encoder, vecs, [r["prompt"] for r in done]) if done else []
    judge = _preference_judge(cfg, hist_vecs)
    pref, hist = preference_scores(judge, [r["user_id"] for r in done], vecs)
    by_id = {ids[u]: ref_vecs[u] for u in ids}
    rows = []
    for r, v, cp, pv, ph in zip(done, vecs, clip_prompt, pref, hist, strict=True):
        ref = by_id.get(r["user_id"], np.zeros((0, 0)))
        row = image_score_row(r, v, encoder, ref, cp, pv, ph)
        rows.append(row | skipped_judge(r["image_id"]))
    return pa.Table.from_pylist(rows, BENCH_SCORES)


def _preference_judge(cfg: Any, history: dict[int, np.ndarray]):
    """The learned preference judge fitted on these users' history images (None when
    too few users have two or more)."""
    from evaluation.preference_judge import fit_preference_judge

    j = cfg.judge
    try:
        return fit_preference_judge(
            {u: v for u, v in history.items() if len(v)},
            j.seed,
            j.preference_negatives,
            j.preference_users,
        )
    except ValueError:
        return None
