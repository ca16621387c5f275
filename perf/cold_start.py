"""Cold-start personas against the planted truth: for the lake's unseen (inductive)
users and its benchmark users, a persona from their subreddit list alone
(`service.cold_start.PersonaEngine`: inductive embedding, attention, evidence, the
configured LLM), scored with the persona-fidelity measure (`evaluation.persona_fidelity`:
community precision and recall, generic subreddits) beside the same users' batch personas
(gold/personas, made from their full evidence). Bar (issue 24): precision >= 0.8.

    .venv/bin/python perf/cold_start.py --lake lake --ground-truth data/sample/ground_truth \
        [--users 200] [-c conf/local.yaml]

Figures go to stdout and perf/out/cold_start.json. A benchmark user's list is their
history subreddits (their held-out reference posts left out, as everywhere).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = Path(__file__).parent / "out"


def subreddit_lists(engine, users: list[int]) -> dict[int, list[str]]:
    """Each user's history subreddits by name, most active first."""
    import pyarrow as pa
    import pyarrow.compute as pc

    edges = engine.tables.history("silver/edges", ["user_id", "subreddit_id", "posts", "comments"])
    edges = edges.filter(pc.is_in(edges["user_id"], pa.array(users, edges["user_id"].type)))
    edges = edges.append_column("activity", pc.add(edges["posts"], edges["comments"]))
    names = dict(
        zip(
            engine.subreddits["subreddit_id"].to_pylist(),
            engine.subreddits["subreddit"].to_pylist(),
            strict=True,
        )
    )
    out: dict[int, list[str]] = {}
    for r in edges.sort_by([("user_id", "ascending"), ("activity", "descending")]).to_pylist():
        out.setdefault(r["user_id"], []).append(names[r["subreddit_id"]])
    return out


def main() -> None:
    import pandas as pd
    import pyarrow.compute as pc

    from evaluation.persona_fidelity import fidelity_frame, persona_fidelity
    from jobs.config import load_config
    from service.cold_start import NewUser, PersonaEngine
    from storage.lake import Lake

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lake", required=True)
    ap.add_argument("--ground-truth", required=True)
    ap.add_argument("--users", type=int, default=200, help="per group (unseen, benchmark)")
    ap.add_argument("-c", "--config", default="conf/local.yaml")
    args = ap.parse_args()
    cfg = load_config(args.config, [f"lake.root={args.lake}"])
    t0 = time.perf_counter()
    engine = PersonaEngine(cfg)
    load_s = time.perf_counter() - t0
    lake = Lake(args.lake, cfg.lake.format)
    users = lake.read("silver/users", ["user_id", "author", "role"])
    unseen = users.filter(pc.equal(users["role"], "inductive"))["user_id"].to_pylist()
    bench = lake.read("bench/users", ["user_id"])["user_id"].to_pylist()
    groups = {"unseen": unseen[: args.users], "benchmark": bench[: args.users]}
    batch = lake.read("gold/personas").to_pandas()
    report: dict = {"lake": args.lake, "load_seconds": round(load_s, 2), "groups": {}}
    for group, ids in groups.items():
        lists = subreddit_lists(engine, ids)
        rows, seconds = [], []
        for u in ids:
            if u not in lists:
                continue
            t = time.perf_counter()
            got = engine.persona(NewUser(subreddits=tuple(lists[u])))
            seconds.append(time.perf_counter() - t)
            rows.append(
                (got.persona or {})
                | {"user_id": u, "llm": f"cold start ({got.llm})", "status": got.status}
            )
        cold = pd.DataFrame(rows)
        same = batch[batch["user_id"].isin(cold["user_id"])]
        both = pd.concat([cold, same], ignore_index=True)
        results = persona_fidelity(both, args.ground_truth, users=users)
        frame = fidelity_frame(results)
        report["groups"][group] = {
            "users": len(rows),
            "seconds_per_persona": round(sum(seconds) / max(len(seconds), 1), 4),
            "fidelity": frame.to_dict(orient="records"),
        }
        each = report["groups"][group]["seconds_per_persona"]
        print(f"{group}: {len(rows)} users, {each} s each")
        cols = ["llm", "personas", "precision", "recall", "generic_share"]
        print(frame[[c for c in cols if c in frame.columns]].to_string(index=False))
    print(f"engine load: {load_s:.1f} s (once per process)")
    OUT.mkdir(exist_ok=True)
    (OUT / "cold_start.json").write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
