"""Reply schemas come from the pydantic models that validate the replies, and a reply
that is valid JSON but empty of content (placeholders copied, no interest named) is
refused with a reason that says so."""

from __future__ import annotations

import json

import pytest

from evaluation.judge import JUDGE_SCHEMA, Judgement, parse_judgement
from generation.overrides import read_overrides
from schemas.persona import (
    MAX_ITEMS,
    MAX_PHRASE,
    MAX_TEXT,
    REPLY_SCHEMAS,
    Persona,
    Preferences,
    is_placeholder,
    parse_persona,
    parse_preferences,
)


def _unbounded(node):
    """A reply schema without the bounds `reply_schema` adds."""
    if isinstance(node, list):
        return [_unbounded(n) for n in node]
    if not isinstance(node, dict):
        return node
    drop = {"additionalProperties", "maxItems"}
    if node.get("type") == "string":
        drop.add("maxLength")
    return {k: _unbounded(v) for k, v in node.items() if k not in drop}


def test_each_json_task_has_the_schema_of_its_model_bounded():
    for schema, model in (
        (REPLY_SCHEMAS["persona"], Persona),
        (REPLY_SCHEMAS["preferences"], Preferences),
        (JUDGE_SCHEMA, Judgement),
    ):
        assert _unbounded(schema) == model.model_json_schema()
        assert schema["additionalProperties"] is False
    persona = REPLY_SCHEMAS["persona"]
    assert set(persona["properties"]) == set(Persona.model_fields)
    assert persona["required"] == ["text"]
    assert all(persona["properties"][f].get("description") for f in ("interests", "text"))
    assert persona["properties"]["interests"]["maxItems"] == MAX_ITEMS
    assert persona["properties"]["interests"]["items"]["maxLength"] == MAX_PHRASE
    assert persona["properties"]["text"]["maxLength"] == MAX_TEXT
    assert persona["$defs"]["Demographics"]["additionalProperties"] is False
    assert REPLY_SCHEMAS["preferences"]["required"] == ["likes"]
    assert JUDGE_SCHEMA["properties"]["score"]["maximum"] == 10


@pytest.mark.parametrize(
    "text", ["...", "<interest>", "string", " Your text ", "[list of interests]", "", "N/A"]
)
def test_copied_placeholders_are_not_answers(text):
    assert is_placeholder(text)


@pytest.mark.parametrize("text", ["street photography", "cats", "r/analog", "a nurse"])
def test_answers_are_not_placeholders(text):
    assert not is_placeholder(text)


def test_a_persona_of_placeholders_is_refused_with_the_reason():
    schema_copy = {
        "interests": ["...", "<interest>"],
        "visual_interests": ["string"],
        "text": "<the persona in the first person>",
    }
    with pytest.raises(ValueError, match="placeholder"):
        parse_persona(json.dumps(schema_copy))
    empty = {"interests": ["..."], "visual_interests": [], "text": "I am me."}
    with pytest.raises(ValueError, match="names no interest"):
        parse_persona(json.dumps(empty))
    ok = parse_persona(json.dumps({"interests": ["cats", "..."], "text": "I like cats."}))
    assert ok["interests"] == ["cats"]


def test_preferences_need_one_real_like():
    with pytest.raises(ValueError, match="no liked attribute"):
        parse_preferences('{"likes": ["...", "<attribute>"], "dislikes": ["grey"]}')
    assert parse_preferences('{"likes": ["warm light", "..."]}')["likes"] == ["warm light"]


def test_an_override_with_only_text_is_still_a_persona(tmp_path):
    f = tmp_path / "overrides.jsonl"
    f.write_text('{"author": "someone", "text": "I paint seascapes."}\n')
    (row,) = read_overrides(f)
    assert row["text"] == "I paint seascapes." and row["given"] == ["text"]


def test_the_judges_parser_keeps_its_rules():
    assert parse_judgement('{"score": "8.5", "reason": 3}') == {"score": 8.5, "reason": "3"}
    with pytest.raises(ValueError, match="outside 0-10"):
        parse_judgement('{"score": 11}')
    with pytest.raises(ValueError, match="a number from 1 to 10"):
        parse_judgement('{"score": null}')


def test_a_reply_that_copies_the_fields_description_is_no_answer_and_items_count_once():
    from schemas.persona import copies

    described = Persona.model_fields["interests"].description
    assert copies("the person's communities and topics, most telling", described)
    assert not copies("film photography", described)
    reply = {
        "interests": ["Film photography", "film  photography", f"{described}!", "knitting"],
        "text": "I shoot film and knit.",
    }
    assert parse_persona(json.dumps(reply))["interests"] == ["Film photography", "knitting"]
    copied = {"interests": ["knitting"], "text": Persona.model_fields["text"].description}
    with pytest.raises(ValueError, match="text: .*the question copied"):
        parse_persona(json.dumps(copied))
    with pytest.raises(ValueError, match="names no interest"):
        parse_persona(json.dumps({"interests": [described], "text": "I knit."}))
