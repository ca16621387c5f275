"""Demographics from self-disclosure and dialect cues: lexicon decisions on hand-written
texts, the template persona carrying them, and their precision measured on a generated
sample world against its ground truth (read here, in a test, never by a stage)."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import zstandard
from rich.console import Console

from llm.demographics import (
    AGE_BANDS,
    FIELDS,
    GENDERS,
    REGIONS,
    age_band,
    decide,
    demographic_cues,
    infer_demographics,
)
from llm.template_backend import persona_json
from schemas.persona import Persona
from world.planted import SampleSpec
from world.write import write_sample

NONE = dict.fromkeys(FIELDS)


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("I'm a 34 year old nurse and love this", "age", "25-34"),
        ("Me (23F) and my cat", "age", "18-24"),
        ("Me (23F) and my cat", "gender", "female"),
        ("[M41] first post here", "gender", "male"),
        ("I turned 50 last week", "age", "45-54"),
        ("my grandkids drew this since I retired", "age", "55+"),
        ("in my late thirties and finally learning", "age", "35-44"),
        ("my dorm is tiny and finals week is brutal", "age", "18-24"),
        ("as a woman in tech I get it", "gender", "female"),
        ("my wife bought me this", "gender", "male"),
        ("I'm nonbinary (they/them)", "gender", "nonbinary"),
        ("y'all are gonna love this", "region", "north_america"),
        ("cheers mate, my favourite colour", "region", "europe"),
        ("this arvo I reckon we got heaps done", "region", "oceania"),
        ("hola! gracias, jajaja", "region", "latin_america"),
        ("valeu, tudo bem? kkkk", "region", "latin_america"),
        ("so nice lah, can leh", "region", "asia"),
        ("sugoi desu, arigatou", "region", "asia"),
        ("今日は晴れ", "region", "asia"),
        ("lekker braai this weekend, eish", "region", "africa"),
        ("abeg no wahala", "region", "africa"),
        ("I work as a software engineer", "occupation", "software developer"),
        ("as a teacher I see this daily", "occupation", "teacher"),
    ],
)
def test_cues_decide_each_field(text: str, field: str, value: str) -> None:
    assert infer_demographics([text])[field] == value


def test_values_come_from_fixed_sets() -> None:
    texts = ["I (23F) love my husband, cheers mate", "my kids say y'all"]
    counts = demographic_cues(texts)
    assert set(counts["age"]) <= set(AGE_BANDS)
    assert set(counts["gender"]) <= set(GENDERS)
    assert set(counts["region"]) <= set(REGIONS)


def test_no_evidence_and_ties_give_none() -> None:
    assert infer_demographics([]) == NONE
    assert infer_demographics(["nice shot, the light is great"]) == NONE
    tie = infer_demographics(["my husband said", "my wife said", "favourite", "favorite"])
    assert tie["gender"] is None and tie["region"] is None


def test_counts_explain_the_decision() -> None:
    texts = ["my husband laughed", "my boyfriend, back then", "my wife would"]
    counts = demographic_cues(texts)
    assert counts["gender"] == Counter({"female": 2, "male": 1})
    assert decide(counts["gender"]) == "female"
    assert decide(counts["gender"], margin=2) is None
    assert decide(counts["gender"], min_cues=3) is None
    assert decide(Counter()) is None


def test_explicit_self_reports_outweigh_indirect_cues() -> None:
    # "as a guy" (a self-report, weight 2) beats one "my husband" (weight 1)
    assert infer_demographics(["as a guy", "my husband"])["gender"] == "male"


@pytest.mark.parametrize(
    "text",
    [
        "the ultimate climate for a teammate",  # mate
        "a minute on the route",  # ute
        "my brush and a take on it",  # bru, tak
        "lahore streets at dusk",  # lah
        "holaday ohio-ish",  # hola
        "reckoning with heapsort",  # reckon, heaps
        "gonnae",  # gonna
    ],
)
def test_cues_respect_word_boundaries(text: str) -> None:
    assert not demographic_cues([text])["region"]


def test_ages_map_to_bands_and_minors_are_ignored() -> None:
    assert [age_band(a) for a in (18, 24, 25, 34, 35, 44, 45, 54, 55, 80)] == [
        "18-24",
        "18-24",
        "25-34",
        "25-34",
        "35-44",
        "35-44",
        "45-54",
        "45-54",
        "55+",
        "55+",
    ]
    assert age_band(15) is None
    assert infer_demographics(["I'm 15 and new here"])["age"] is None
    assert infer_demographics(["I\u2019m 29 and new here"])["age"] == "25-34"


def test_template_persona_carries_demographics() -> None:
    inputs = {
        "subreddits": ["FilmPhotos", "pics"],
        "snippets": ["cheers mate, my husband shot this on portra", "kodak portra grain"],
        "snippet_ranks": [1, 1],
    }
    persona = json.loads(persona_json(inputs))
    assert persona["demographics"] == {
        "age": None,
        "gender": "female",
        "region": "europe",
        "occupation": None,
    }
    assert persona["text"].startswith("[template-made, no LLM]")
    assert Persona.model_validate(persona).demographics.gender == "female"
    empty = json.loads(persona_json({"subreddits": [], "snippets": []}))
    assert empty["demographics"] == NONE


# ------------------------------------------------------- measured on a sample world


@pytest.fixture(scope="module")
def world_inferences(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[dict, dict]]:
    """(inferred demographics over a user's comment bodies, ground truth) per author of a
    300-user, two-month sample world."""
    root: Path = tmp_path_factory.mktemp("demographics")
    spec = SampleSpec(users=300, months=("2021-05", "2021-06"), images=False, image_size=16)
    write_sample(root, spec, console=Console(file=io.StringIO()))
    truth = {
        r["author"]: r for r in pq.read_table(root / "ground_truth" / "users.parquet").to_pylist()
    }
    bodies: dict[str, list[str]] = {a: [] for a in truth}
    dctx = zstandard.ZstdDecompressor(max_window_size=1 << 31)
    for dump in sorted((root / "dumps").glob("RC_*.zst")):
        with open(dump, "rb") as f:
            data = dctx.stream_reader(f).read()
        for line in data.splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue  # the world's planted corrupt lines
            if isinstance(obj, dict) and obj.get("author") in bodies:
                bodies[obj["author"]].append(obj["body"])
    return [(infer_demographics(b), truth[a]) for a, b in bodies.items()]


@pytest.mark.parametrize(
    ("field", "truth_key"), [("age", "age_band"), ("gender", "gender"), ("region", "region")]
)
def test_inferred_values_beat_chance_on_a_sample_world(
    world_inferences: list[tuple[dict, dict]], field: str, truth_key: str
) -> None:
    """Precision of the values the lexicon commits to, against the world's ground truth.
    Gender and region (measured 1.0): at least halfway from always guessing the majority
    class to perfect. Age (five bands, few cues; the lexicon reads "my roommate" as
    18-24): over 1.5x the majority share; measured 0.65-0.70 on this world, 0.33-0.68 on
    other seeds, 0.63 over all comments of the 2,000-user demo world."""
    truth = Counter(t[truth_key] for _, t in world_inferences)
    majority = truth.most_common(1)[0][1] / sum(truth.values())
    made = [(d[field], t[truth_key]) for d, t in world_inferences if d[field] is not None]
    assert len(made) >= 10, f"{field}: only {len(made)} users inferred"
    precision = sum(got == want for got, want in made) / len(made)
    if field == "age":
        assert precision > 1.5 * majority, (precision, majority)
    else:
        assert precision >= majority + (1 - majority) / 2, (field, precision, majority)
