"""The image scorers of stage `score` beside the LLM judge: CLIPScore ×100 vs the prompt
(CLIP only), the learned preference judge (`evaluation.preference_judge`, fitted on
history) and the per-method means the manifest records."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa

from contract.history import REFERENCES
from contract.stage_io import StageIO
from media.image_embed import COLOUR  # the weight-free encoder


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


def clip_ref_by_method(
    scores: pa.Table, column: str = "clip_ref", digits: int = 2
) -> dict[str, float]:
    """Mean of a score column (CLIPScore vs references) per method (for the manifest)."""
    by_method: dict[str, list[float]] = defaultdict(list)
    for m, s in zip(scores["method"].to_pylist(), scores[column].to_pylist(), strict=True):
        if s is not None:
            by_method[m].append(s)
    return {m: round(float(np.mean(v)), digits) for m, v in sorted(by_method.items())}


def image_score_row(
    image: dict, vector, encoder: str, refs: np.ndarray, clip_prompt, preference, history
) -> dict:
    """The scores every bench/scores row of a generated image carries: its identity, its
    embedding, CLIPScore vs the user's references and vs the prompt, the preference
    judge's score (ZIPBench's `score` stage and the external benchmarks)."""
    from evaluation.stats import clip_score_to_set

    return {
        "image_id": image["image_id"],
        "user_id": image["user_id"],
        "prompt_id": image["prompt_id"],
        "method": image["method"],
        "method_llm": image["llm"],
        "seed_index": image["seed_index"],
        "encoder": encoder,
        "embedding": np.asarray(vector, np.float32).tolist(),
        "references": int(len(refs)),
        "clip_ref": clip_score_to_set(vector, refs) if len(refs) else None,
        "clip_prompt": clip_prompt,
        "preference": preference,
        "preference_history": history,
    }
