"""RapidData's human votes against the scorers: each pair's images scored like generated
images (CLIPScore vs the prompt, CLIP only; CLIPScore vs the crowd's other choices,
leave-one-out, in any feature space), then per scorer the pairwise agreement with the
majority vote and, where the votes allow, SROCC/PLCC of its score difference against the
first image's vote share."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from service.external.rapidata import Pair

#: the scorers asked which image of a pair they prefer (bench/scores columns)
VOTE_SCORERS = {
    "clip_prompt": "CLIPScore vs the prompt (CLIP only)",
    "clip_ref": "CLIPScore vs the crowd's other choices (leave-one-out)",
}
#: fewest decided pairs for SROCC/PLCC
MIN_PAIRS = 3


def run_rapidata(cfg: Any, pairs: list[Pair], console: Any) -> dict:
    """Score every pair's images, write bench/{users,prompts,images,scores} under
    ``external/rapidata/`` with the votes' agreement table and the report."""
    from evaluation.scorers import prompt_scores
    from evaluation.stats import clip_score_to_set
    from generation.diffusion import image_path
    from media.image_embed import COLOUR
    from schemas.bench import BENCH_IMAGES, BENCH_PROMPTS, BENCH_SCORES, BENCH_USERS
    from service.external.common import digest, embed, external_lake, skipped_judge
    from service.external.images import all_bytes
    from service.external.report import rapidata_report

    t0 = time.perf_counter()
    lake = external_lake(cfg, "rapidata")
    encoder = cfg.images.model or COLOUR
    sides = [(p, k, s) for p in pairs for k, s in enumerate(p.sides, 1)]
    items = [{"image": s.image, "image_path": s.path, "image_url": s.url} for _, _, s in sides]
    with console.status(f"rapidata: reading {len(items)} images"):
        got = all_bytes(items, cfg.images)
    images, ok = [], []
    for (p, k, s), (data, why) in zip(sides, got, strict=True):
        row = {
            "image_id": digest("rapidata", p.pair_id, k),
            "user_id": 0,
            "prompt_id": p.pair_id,
            "method": s.model or f"image{k}",
            "llm": "-",
            "seed_index": 0,
            "seed": 0,
            "prompt": p.prompt,
            "model": s.model or "-",
            "smoke_model": False,
            "seconds": 0.0,
        }
        if data is None:
            images.append(row | {"status": "failed", "reason": why})
            continue
        import hashlib

        sha = hashlib.sha256(data).hexdigest()
        rel = image_path(sha)
        (lake.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (lake.root / rel).write_bytes(data)
        images.append(row | {"status": "done", "path": rel, "sha256": sha})
        ok.append((p, k, s, data, row))
    vecs = embed(encoder, [d for *_, d, _ in ok])
    clip_prompt = prompt_scores(encoder, vecs, [p.prompt for p, *_ in ok]) if ok else []
    index = {(p.pair_id, k): i for i, (p, k, *_) in enumerate(ok)}
    winners = {}  # pair -> the crowd's choice (row in vecs), decided pairs with both images
    for p in pairs:
        a, b = index.get((p.pair_id, 1)), index.get((p.pair_id, 2))
        if a is not None and b is not None and p.sides[0].votes != p.sides[1].votes:
            winners[p.pair_id] = a if p.sides[0].votes > p.sides[1].votes else b
    scores = []
    for (p, _, _, _, row), v, cp in zip(ok, vecs, clip_prompt, strict=True):
        crowd = [j for pid, j in winners.items() if pid != p.pair_id]
        ref = vecs[crowd] if crowd else np.zeros((0, 0))
        scores.append(
            {
                "image_id": row["image_id"],
                "user_id": 0,
                "prompt_id": p.pair_id,
                "method": row["method"],
                "method_llm": "-",
                "seed_index": 0,
                "encoder": encoder,
                "embedding": np.asarray(v, np.float32).tolist(),
                "references": len(crowd),
                "clip_ref": clip_score_to_set(v, ref) if len(crowd) else None,
                "clip_prompt": cp,
                **skipped_judge(row["image_id"]),
            }
        )
    scores_t = pa.Table.from_pylist(scores, BENCH_SCORES)
    lake.write_table(
        "bench/users",
        pa.Table.from_pylist(
            [{"user_id": 0, "stratum": "external:rapidata (the crowd)", "images": len(ok),
              "references": []}], BENCH_USERS,
        ),
    )  # fmt: skip
    lake.write_table(
        "bench/prompts",
        pa.Table.from_pylist(
            [{"prompt_id": p.pair_id, "user_id": 0, "prompt": p.prompt, "source": "rapidata"}
             for p in pairs], BENCH_PROMPTS,
        ),
    )  # fmt: skip
    lake.write_table("bench/images", pa.Table.from_pylist(images, BENCH_IMAGES))
    lake.write_table("bench/scores", scores_t)
    votes = vote_frame(pairs, scores_t.to_pandas())
    table = agreement_table(votes)
    summary = {
        "benchmark": "rapidata",
        "pairs": len(pairs),
        "images": len(items),
        "images_failed": len(items) - len(ok),
        "decided_pairs": len(winners),
        "encoder": encoder,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    summary["agreement"] = table.round(4).replace({np.nan: None}).to_dict("records")
    summary["report"] = str(rapidata_report(lake, cfg, scores_t, images, votes, table, summary))
    return summary


def vote_frame(pairs: list[Pair], scores: pd.DataFrame) -> pd.DataFrame:
    """One row per pair: votes, the first image's vote share, and each scorer's score of
    both images (NaN where an image or a score is missing)."""
    from service.external.common import digest

    by_id = scores.set_index("image_id") if len(scores) else None
    rows = []
    for p in pairs:
        v1, v2 = p.sides[0].votes, p.sides[1].votes
        row = {
            "pair_id": p.pair_id,
            "votes_1": v1,
            "votes_2": v2,
            "share_1": v1 / (v1 + v2) if v1 + v2 else np.nan,
        }
        for col in VOTE_SCORERS:
            for k in (1, 2):
                iid = digest("rapidata", p.pair_id, k)
                val = by_id[col].get(iid) if by_id is not None and iid in by_id.index else None
                row[f"{col}_{k}"] = np.nan if val is None else float(val)
        rows.append(row)
    return pd.DataFrame(rows)


def agreement_table(votes: pd.DataFrame) -> pd.DataFrame:
    """Per scorer: decided pairs it scored both images of, the share where it prefers
    the majority's image (a scorer's tie counts half), and SROCC/PLCC of its score
    difference against the first image's vote share (NaN below `MIN_PAIRS` or when
    either side is constant)."""
    from scipy.stats import pearsonr, spearmanr

    rows = []
    for col, what in VOTE_SCORERS.items():
        row = {"scorer": what, "pairs": 0, "agreement": np.nan}
        row |= dict.fromkeys(("srocc", "srocc_p", "plcc", "plcc_p"), np.nan)
        if len(votes):
            diff = (votes[f"{col}_1"] - votes[f"{col}_2"]).to_numpy(float)
            vote = np.sign((votes["votes_1"] - votes["votes_2"]).to_numpy(float))
            both = ~np.isnan(diff)
            decided = both & (vote != 0)
            s = np.sign(diff[decided])
            row["pairs"] = int(decided.sum())
            if decided.any():
                row["agreement"] = float(np.mean(np.where(s == 0, 0.5, s == vote[decided])))
            share = votes["share_1"].to_numpy(float)
            use = both & ~np.isnan(share)
            x, y = diff[use], share[use]
            if use.sum() >= MIN_PAIRS and np.ptp(x) > 0 and np.ptp(y) > 0:
                r, p = spearmanr(x, y)
                row["srocc"], row["srocc_p"] = float(r), float(p)
                r, p = pearsonr(x, y)
                row["plcc"], row["plcc_p"] = float(r), float(p)
        rows.append(row)
    return pd.DataFrame(rows)
