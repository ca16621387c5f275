"""Stage `score`'s domain: every generated image scored against its user — CLIPScore ×100
vs the user's held-out reference images (bench/references, embedded in
silver/image_embeddings), vs its prompt (CLIP only), the learned preference judge
(`evaluation.preference_judge`, fitted here on history images only), Pigeon's history
metrics (`evaluation.history_metrics`: history CLIP-I in the lake's space and in the
DINO-style EfficientNet-Lite0 space, and the DINO-style score vs references) and, unless
``judge.backend: none``, the persona-conditioned LLM judge through the backends' fan-out
-> bench/scores (one row per made image). The same scorers, the same way, score the
agreement set (other benchmark users' reference images) -> bench/agreement, which the
report joins with the planted truth.

The LLM judge runs on its own `judge.*` runtime and sees one persona per user, the one
`judge.persona_llm` made (`persona_for`); a user without that persona gets judge rows
``failed`` for that missing input (no call made), the other scores standing.

`score` is the sequence of its steps; what they use lives beside it in `evaluation`:
`references` (the lake's images, the references, the agreement set), `scorers` (CLIPScore
vs the prompt, the preference judge, per-method means) and `judging` (the LLM judge's
requests and rows through `llm.llm_stage`, on the `judge.*` section).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contract.stage import Stage
from contract.stage_io import StageIO
from evaluation.history_metrics import score_history
from evaluation.judge import judge_persona_llm
from evaluation.judging import JudgePlan, ToJudge, llm_labels, run_judge
from evaluation.references import (
    References,
    agreement_pairs,
    fetch_pngs,
    load_references,
    media_file,
)
from evaluation.scorers import (
    clip_ref_by_method,
    fit_judge,
    image_score_row,
    preference_scores,
    prompt_scores,
)
from evaluation.stats import clip_score_to_set
from llm import check_judge
from llm.llm_stage import finish, preflight
from media.image_embed import embed_payloads
from schemas.persona import persona_for
from schemas.tables import MEDIA

SCORES = "bench/scores"  # one row per made image
AGREEMENT = "bench/agreement"  # the scorers' agreement set


def score(io: StageIO) -> None:
    """bench/images + references + history + personas -> bench/scores (one row per made
    image) and bench/agreement (the agreement set: other users' references, same scorers)."""
    judge = io.config.judge
    check_llm_judge(judge)
    refs = load_references(io)
    pref_judge = fit_judge(io, refs.embeddings)
    images = score_images(io, refs, pref_judge)
    agreement = score_agreement(io, refs, pref_judge)
    persona_llm = judge_persona_llm(judge.persona_llm, llm_labels(io.config.llm))
    users = sorted({t.row["user_id"] for t in images} | set(refs.vectors))
    shown = shown_personas(io, persona_llm, users)
    plan = JudgePlan(judge, shown, persona_llm, refs.encoder, (SCORES, AGREEMENT))
    for table, items in ((SCORES, images), (AGREEMENT, agreement)):
        for item in items:
            plan.add(table, item)
    results = run_judge(io, plan)
    write_results(io, results, persona_llm, refs.encoder)


def check_llm_judge(judge) -> None:
    """An LLM judge that is on must see images and its backend must answer (preflight)."""
    if not judge.off:
        check_judge(judge)
        preflight([judge])


def score_images(io: StageIO, refs: References, pref_judge) -> list[ToJudge]:
    """bench/images' made images embedded and scored: CLIPScore vs the user's references
    and vs the prompt, the preference judge; one row for the judge per image."""
    images = io.read("bench/images")
    images = images.filter(pc.equal(images["status"], "done")).to_pylist()
    encoder = refs.encoder
    with io.console.status(f"score: embedding {len(images):,} images ({encoder})"):
        payloads = [media_file(io, r["path"]).read_bytes() for r in images]
        vecs = embed_payloads(encoder, payloads)
        clip_prompt = prompt_scores(encoder, vecs, [r["prompt"] for r in images])
    pref, hist = preference_scores(pref_judge, [r["user_id"] for r in images], vecs)
    with io.console.status("score: history metrics (history CLIP-I, DINO-style space)"):
        history = score_history(io, refs, [r["user_id"] for r in images], payloads, vecs)
    out = []
    for r, v, png, cp, pv, ph, hc in zip(
        images, vecs, payloads, clip_prompt, pref, hist, history, strict=True
    ):
        row = image_score_row(r, v, encoder, refs.of(r["user_id"]), cp, pv, ph) | hc
        inputs = {"image": r["image_id"], "sha256": r["sha256"]}
        out.append(ToJudge(row, png, r["prompt"], inputs))
    return out


def score_agreement(io: StageIO, refs: References, pref_judge) -> list[ToJudge]:
    """The agreement set (`judge.agreement_images` of the other benchmark users' reference
    images per user) scored the same way; a multimodal judge gets the posted image fetched,
    one that could not be fetched is a missing input."""
    judge = io.config.judge
    pairs = agreement_pairs(refs.rows, sorted(refs.vectors), judge.agreement_images, judge.seed)
    avecs = np.asarray([r["embedding"] for _, r in pairs] or np.zeros((0, 0)), np.float32)
    apref, ahist = preference_scores(pref_judge, [u for u, _ in pairs], avecs)
    multimodal = not judge.off and judge.backend != "template"
    fetched = fetch_pngs(io, [r["image_url"] for _, r in pairs]) if multimodal and pairs else []
    out = []
    for k, ((u, r), v, pv, ph) in enumerate(zip(pairs, avecs, apref, ahist, strict=True)):
        ref = refs.of(u)
        png, why = fetched[k] if fetched else (b"", None)
        row = {
            "user_id": u,
            "post_id": r["post_id"],
            "position": r["position"],
            "encoder": refs.encoder,
            "references": int(len(ref)),
            "clip_ref": clip_score_to_set(v, ref) if len(ref) else None,
            "preference": pv,
            "preference_history": ph,
        }
        inputs = {"user": u, "post": r["post_id"], "position": r["position"]}
        out.append(ToJudge(row, png or b"", None, inputs, why))
    return out


def shown_personas(io: StageIO, persona_llm: str, users: list[int]) -> dict:
    """The persona the judge sees per user: the ``done`` one `persona_llm` made (None
    when the user has none)."""
    keys = [(u, persona_llm) for u in users]
    return dict(zip(users, persona_for(keys, io.read("gold/personas")), strict=True))


def write_results(
    io: StageIO, results: dict[str, pa.Table], persona_llm: str, encoder: str
) -> None:
    """Write bench/agreement and bench/scores; the manifest's details: call counts (a
    retryable judge failure in either table counts), the agreement set, the judge and
    the per-method means."""
    judge = io.config.judge
    io.write(AGREEMENT, results[AGREEMENT])
    finish(io, SCORES, results[SCORES], "score")
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
        "clip_ref_by_method": clip_ref_by_method(results[SCORES]),
        "preference_by_method": clip_ref_by_method(results[SCORES], "preference", 4),
        "clip_history_by_method": clip_ref_by_method(results[SCORES], "clip_history"),
        "dino_history_by_method": clip_ref_by_method(results[SCORES], "dino_history"),
        "encoder": encoder,
    }


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
