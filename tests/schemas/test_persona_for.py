"""`persona_for`: the one rule for which persona goes with an image (judge, report, export)."""

from __future__ import annotations

import pyarrow as pa

from schemas.gold import PERSONAS
from schemas.persona import persona_for


def _persona(user: int, llm: str, status: str = "done") -> dict:
    return {
        "user_id": user,
        "source": "llm",
        "demographics": None,
        "interests": [],
        "affective_traits": [],
        "visual_interests": [],
        "text": f"{user} by {llm}" if status == "done" else None,
        "evidence_mode": "full",
        "evidence_subreddits": [],
        "evidence_ids": [],
        "evidence_tokens": 0,
        "tokenizer": "whitespace",
        "evidence": "",
        "llm": llm,
        "template": llm.startswith("template"),
        "status": status,
        "reason": None if status == "done" else "invalid JSON",
        "raw": None,
        "prompt_version": "v1",
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "attempts": 1,
        "seconds": 0.0,
        "request_id": f"{user}{llm}",
    }


ROWS = [
    _persona(1, "template:template"),
    _persona(1, "openai:tiny"),
    _persona(2, "openai:big", "failed"),  # sorts first, but failed: never chosen
    _persona(2, "template:template"),
    _persona(3, "openai:tiny", "failed"),
]


def _texts(keys, personas=ROWS):
    return [None if p is None else p["text"] for p in persona_for(keys, personas)]


def test_an_llm_image_gets_the_same_users_persona_by_the_same_llm():
    keys = [(1, "openai:tiny"), (1, "template:template"), (2, "template:template")]
    assert _texts(keys) == ["1 by openai:tiny", "1 by template:template", "2 by template:template"]


def test_an_image_made_without_an_llm_gets_the_first_done_persona_by_label():
    # "openai:tiny" < "template:template", whatever the table order; failed rows skipped
    assert _texts([(1, "-"), (2, "-")]) == ["1 by openai:tiny", "2 by template:template"]
    assert _texts([(1, "-")], list(reversed(ROWS))) == ["1 by openai:tiny"]


def test_no_persona_is_none_never_another_users_or_another_llms():
    keys = [(2, "openai:big"), (3, "openai:tiny"), (3, "-"), (1, "openai:other"), (9, "-")]
    assert _texts(keys) == [None] * len(keys)


def test_an_arrow_table_and_its_rows_give_the_same_answer():
    table = pa.Table.from_pylist(ROWS, schema=PERSONAS)
    keys = [(u, llm) for u in (1, 2, 3) for llm in ("-", "openai:tiny", "template:template")]
    assert persona_for(keys, table) == persona_for(keys, table.to_pylist())
    assert _texts(keys, table) == _texts(keys)
