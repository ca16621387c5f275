"""SmolLM2-135M-Instruct (the `hf` backend, CPU) writing personas and preferences from a
lake's real evidence, decoding constrained to each task's reply schema
(``llm.response_format: json_schema``: llguidance masks what the schema's grammar refuses)
against the same model decoding freely, the peer, in the same run on the same requests.

For each: the share of replies that validate (`schemas.persona` parsers: JSON, schema,
no copied placeholders, at least one interest / like; no repair call here, so the share
is the model's own), decode tokens per second on the decode loop's own clock (tokens its
decode steps made over the seconds they took: forward, mask, sampling; the prompts'
prefill forwards apart), rows a step and milliseconds a step, seconds per reply.
Bar (issue 23): the constrained path keeps >= 0.8x the free path's tokens/s. The
backend decodes in one continuous batch (`llm.continuous`: a row
that ends is refilled by the next request); requests join grouped by task
(`batch_order`); each `--chunk` of requests goes through both modes in turn
(interleaved: background load falls on both alike).

    .venv/bin/python perf/constrained.py --lake lake [--users 8 --max-tokens 256]

The lake needs gold/personas (any LLM: its `evidence` column is what the stage sent).
Figures go to stdout and perf/out/constrained.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = Path(__file__).parent / "out"
MODEL = "packaged:smollm2"
#: the two decoding modes: free (the schema spelt out in the prompt) and constrained
MODES = ("json_object", "json_schema")


def requests(lake: str, users: int) -> list:
    """A persona and a preferences request per user, from the evidence the lake's
    personas stage built (the same messages the stage sends)."""
    import pyarrow.compute as pc

    from generation.prompts import persona_messages, preferences_messages
    from llm import ChatRequest
    from schemas.persona import REPLY_SCHEMAS
    from storage.lake import Lake

    rows = Lake(lake).read("gold/personas", ["user_id", "evidence", "status"])
    rows = rows.filter(pc.equal(rows["status"], "done")).slice(0, users).to_pylist()
    out = []
    for r in rows:
        for task, messages in (
            ("persona", persona_messages(r["evidence"])),
            ("preferences", preferences_messages(r["evidence"])),
        ):
            out.append(
                ChatRequest(
                    f"{task}-{r['user_id']}", task, messages, json=True, schema=REPLY_SCHEMAS[task]
                )
            )
    return out


def backends(max_tokens: int, batch: int) -> dict:
    """mode -> an `hf` backend decoding in that mode at the run's cap."""
    from llm import Runtime, make_backend

    rt = Runtime(batch_size=batch, max_tokens=max_tokens)
    return {mode: make_backend("hf", MODEL, None, None, rt, response_format=mode) for mode in MODES}


def interleaved(reqs: list, max_tokens: int, batch: int, chunk: int) -> dict:
    """Each chunk of requests (in the backend's join order) through both modes in turn,
    so background load falls on both alike; seconds and completions per mode. A chunk is
    one `complete` call: the backend's continuous batch refills a finished row's slot
    from the chunk's waiting requests."""
    from llm.hf_backend import batch_order

    made = backends(max_tokens, batch)
    order = batch_order(reqs)
    seconds = dict.fromkeys(made, 0.0)
    done: dict = {key: [None] * len(reqs) for key in made}
    for i in range(0, len(order), chunk):
        part = order[i : i + chunk]
        for key, backend in made.items():
            t0 = time.perf_counter()
            got = asyncio.run(backend.complete([reqs[j] for j in part]))
            seconds[key] += time.perf_counter() - t0
            for j, c in zip(part, got, strict=True):
                done[key][j] = c
    stats = {key: dict(b._decode_loop().stats) for key, b in made.items()}
    return {"seconds": seconds, "done": done, "stats": stats}


def figures(reqs: list, runs: dict, mode: str) -> dict:
    """Validity, decode tokens/s and seconds per reply of one mode. Decode tokens/s is
    the decode loop's own clock: tokens made by decode steps over the seconds those
    steps took (forward, mask, sampling), prefill forwards apart."""
    from schemas.persona import REPLY_PARSERS

    done, seconds, st = runs["done"][mode], runs["seconds"][mode], runs["stats"][mode]
    valid: dict[str, list[bool]] = {}
    reasons: list[str] = []
    for r, c in zip(reqs, done, strict=True):
        try:
            REPLY_PARSERS[r.task](c.text or "")
            ok = True
        except ValueError as e:
            ok = False
            reasons.append(f"{r.task}: {e}")
        valid.setdefault(r.task, []).append(ok)
    return {
        "mode": mode,
        "valid": {t: round(sum(v) / len(v), 3) for t, v in valid.items()},
        "decode_tokens": st["decode_tokens"],
        "prefill_seconds": round(st["prefill_s"], 2),
        "tokens_per_s": round(st["decode_tokens"] / max(st["decode_s"], 1e-9), 2),
        "rows_per_step": round(st["decode_tokens"] / max(st["steps"], 1), 2),
        "ms_per_step": round(1000 * st["decode_s"] / max(st["steps"], 1), 1),
        "seconds_per_reply": round(seconds / len(reqs), 2),
        "reasons": reasons[:6],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lake", required=True)
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--chunk", type=int, default=0, help="requests per call (0: all)")
    args = ap.parse_args()
    reqs = requests(args.lake, args.users)
    runs = interleaved(reqs, args.max_tokens, args.batch_size, args.chunk or len(reqs))
    free = figures(reqs, runs, "json_object")
    constrained = figures(reqs, runs, "json_schema")
    ratio = constrained["tokens_per_s"] / free["tokens_per_s"]
    report = {
        "users": len(reqs) // 2,
        "batch_size": args.batch_size,
        "free": free,
        "constrained": constrained,
        "tokens_per_s_ratio": round(ratio, 2),
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "constrained.json").write_text(json.dumps(report, indent=2))
    for m in (free, constrained):
        print(
            f"{m['mode']:>11}: valid persona {m['valid'].get('persona', 0):.0%}, "
            f"preferences {m['valid'].get('preferences', 0):.0%}; "
            f"{m['tokens_per_s']} decode tokens/s ({m['rows_per_step']} rows a step, "
            f"{m['ms_per_step']} ms a step; prefill {m['prefill_seconds']} s apart), "
            f"{m['seconds_per_reply']} s per reply"
        )
        for why in m["reasons"]:
            print(f"             {why[:110]}")
    print(f"constrained / free tokens/s: {ratio:.2f}x (bar >= 0.8x); {report['users']} users")


if __name__ == "__main__":
    main()
