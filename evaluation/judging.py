"""Stage `score`'s LLM judge through the LLM-stage helper (`llm.llm_stage`), on the
judge's own settings section (`judge.*`): every scored row becomes one judge request
(persona + image, `evaluation.judge`), or a row made without a call — ``skipped`` with
``judge.backend: none``, ``failed`` for a missing input (no persona by
`judge.persona_llm`, an agreement image that could not be fetched). The scores computed
this run (`SCORE_COLUMNS`) replace a resumed row's."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from contract.stage_io import StageIO
from evaluation.judge import JUDGE_SCHEMA, JUDGE_VERSION, judge_messages, parse_judgement
from llm import ChatRequest, request_id
from llm.llm_stage import (
    Work,
    call_columns,
    call_values,
    direct_call,
    no_call,
    run_llm_stage,
)
from schemas.persona import roleplay
from schemas.tables import table as spec_of

#: the columns scoring computes afresh on every run (a resumed judge row keeps its call)
SCORE_COLUMNS = (
    "encoder",
    "embedding",
    "references",
    "clip_ref",
    "clip_prompt",
    "preference",
    "preference_history",
    "clip_history",
    "dino_ref",
    "dino_history",
    "history_images",
)
_BLANK = {"judge_score": None, "judge_reason": None}


def llm_labels(llm) -> list[str]:
    """The configured rewriting LLMs' labels (``llm.models``, else ``llm.backend:model``)."""
    return [m.label for m in llm.models] or [f"{llm.backend}:{llm.model}"]


def off_call(version: str, rid: str) -> dict:
    """Call columns of a row the judge did not see (``judge.backend: none``)."""
    why = "LLM judge off (judge.backend: none)"
    return call_values("none", False, version, no_call(rid, "skipped", why))


@dataclass
class ToJudge:
    """A scored row for the judge: the image it sees (PNG bytes), the prompt it was made
    for (None for a posted image), the request's structured inputs, and why the judge
    cannot see it (a missing input; None when it can)."""

    row: dict
    png: bytes
    prompt: str | None
    inputs: dict
    why: str | None = None


class JudgePlan:
    """The judge's `Work` per output table: `add` plans one scored row; `meta` keeps each
    request's scored row by request id (`to_row`, `fresh`)."""

    def __init__(self, judge, shown: dict, persona_llm: str, encoder: str, tables: tuple):
        self.judge, self.shown, self.persona_llm, self.encoder = judge, shown, persona_llm, encoder
        self.rt = judge.runtime()
        self.meta: dict[str, dict] = {}
        self.works = {t: Work(judge, to_row=self.to_row) for t in tables}

    def add(self, table: str, item: ToJudge) -> None:
        """Plan `item` in `table`: a request, or a row made without a call."""
        judge, row = self.judge, item.row
        p = self.shown.get(row["user_id"])
        messages = judge_messages(roleplay(p) if p is not None else "", item.prompt, item.png)
        inputs = item.inputs | {
            "reference_similarity": row["clip_ref"],
            "space": self.encoder,
            "v": JUDGE_VERSION,
        }
        rid = request_id(judge.label, "judge", messages, inputs, self.rt, judge.response_format)
        self.meta[rid] = row
        w = self.works[table]
        if judge.off:
            w.direct.append(row | _BLANK | off_call(JUDGE_VERSION, rid))
        elif p is None or item.why:
            why = item.why or (
                f"no persona: user {row['user_id']} has no done persona by {self.persona_llm}"
            )
            w.direct.append(row | _BLANK | direct_call(judge, JUDGE_VERSION, rid, "failed", why))
        else:
            w.requests.append(
                ChatRequest(rid, "judge", messages, inputs, json=True, schema=JUDGE_SCHEMA)
            )

    def to_row(self, req, res) -> dict:
        """A judge reply -> its table row (the scored row + score, reason, call)."""
        out = res["output"] or {}
        return (
            self.meta[req.id]
            | {"judge_score": out.get("score"), "judge_reason": out.get("reason")}
            | call_columns(self.judge, JUDGE_VERSION, res)
        )


def run_judge(io: StageIO, plan: JudgePlan) -> dict[str, pa.Table]:
    """Each planned table as it is to be written: the judge's fan-out through the stage's
    resume path on `judge.*` (rows as planned when the judge is off)."""
    results = {}
    for table, w in plan.works.items():
        if plan.judge.off:
            results[table] = pa.Table.from_pylist(w.direct, schema=spec_of(table).schema)
        else:
            parsers = {"judge": parse_judgement}
            out = run_llm_stage(io, "score", table, [w], parsers, settings=plan.judge)
            results[table] = fresh(out, plan.meta, table)
    return results


def fresh(out: pa.Table, meta: dict[str, dict], table: str) -> pa.Table:
    """The fan-out's table with the scoring columns of this run (a resumed judge row
    keeps its call but never an older run's CLIPScore or preference)."""
    rows = out.to_pylist()
    for r in rows:
        now = meta[r["request_id"]]
        r.update({k: now[k] for k in SCORE_COLUMNS if k in now})
    return pa.Table.from_pylist(rows, schema=spec_of(table).schema)
