"""Persona fidelity on a hand-made planted truth (3 communities, a generic subreddit,
3 users) and hand-made personas: every figure below follows from the tables here, so a
matching rule that goes wrong (subreddit names, r/ mentions, vocabulary words, generic
subreddits, demographics, colour words and their directions, noise) changes a number."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evaluation.colour_lexicon import agrees, colour_words
from evaluation.persona_fidelity import (
    MissingTruth,
    fidelity_frame,
    fidelity_table,
    persona_fidelity,
)

FIELDS = "hue,hue2,saturation,brightness,contrast,grain"
#: user id -> author; user 4 is in the lake but not in the truth
AUTHORS = {1: "Zz_Ann", 2: "zz_bob", 3: "zz_cat", 4: "zz_ghost"}
T, OTHER = "template:template", "openai:x"


def write_truth(root: Path) -> Path:
    gt = root / "ground_truth"
    gt.mkdir()
    comms = {
        "alpha": (["AlphaPhotos", "AlphaDaily"], ["film", "lens"]),
        "beta": (["BetaGarden"], ["soil", "tomato"]),
        "gamma": (["GammaCats"], ["whisker", "meow"]),
    }
    pq.write_table(
        pa.table(
            {
                "community": list(comms),
                "subreddits": [s for s, _ in comms.values()],
                "vocab": [v for _, v in comms.values()],
                "taste": [[0.5] * 6] * 3,
            }
        ),
        gt / "communities.parquet",
    )
    subs = [(s, c) for c, (names, _) in comms.items() for s in names]
    pq.write_table(
        pa.table(
            {
                "subreddit": [s for s, _ in subs] + ["todayilearned"],
                "community": [c for _, c in subs] + [None],
                "generic": [False] * len(subs) + [True],
            }
        ),
        gt / "subreddits.parquet",
    )
    users = pa.table(
        {
            "author": ["zz_ann", "zz_bob", "zz_cat"],  # the lake writes Zz_Ann: case-insensitive
            "communities": [["alpha", "beta"], ["gamma"], ["beta", "gamma"]],
            "taste": [
                [0.0, 0.1, 0.8, 0.7, 0.3, 0.6],  # red, saturated, bright, soft, grainy
                [0.66, 0.75, 0.2, 0.3, 0.7, 0.2],  # blue, muted, dark
                [0.45, 0.6, 0.1, 0.8, 0.5, 0.5],  # cyan to azure, muted, bright
            ],
            "age_band": ["25-34", "55+", "18-24"],
            "gender": ["female", "male", "nonbinary"],
            "region": ["europe", "asia", "north_america"],
            "disliked_community": ["gamma", "alpha", "alpha"],
        }
    ).replace_schema_metadata({"taste_fields": FIELDS, "generic_subreddits": "todayilearned"})
    pq.write_table(users, gt / "users.parquet")
    pq.write_table(
        pa.table(
            {
                "post_id": ["p1", "p2", "p2b", "p3", "p4"],
                "author": ["zz_ann", "zz_bob", "zz_bob", "zz_cat", "zz_nobody"],
            }
        ),
        gt / "images.parquet",
    )
    return gt


def persona(u, llm, interests, visual, text, age=None, gender=None, region=None, status="done"):
    return {
        "user_id": u,
        "llm": llm,
        "source": "llm",
        "status": status,
        "demographics": {"age": age, "gender": gender, "region": region, "occupation": None},
        "interests": interests,
        "affective_traits": ["calm"],
        "visual_interests": visual,
        "text": text,
    }


PERSONAS = [
    # alpha by a subreddit and a word, beta by r/ in the text; a generic subreddit; warm
    # agrees with a red hue; "tried" is noise
    persona(
        1,
        T,
        ["alpha photos", "todayilearned"],
        ["film", "warm", "tried"],
        "I spend time in r/BetaGarden.",
        age="25-34",
        gender="Female",
    ),
    # alpha (a like, and the disliked community) and gamma: precision 1/2; "60" is 55+;
    # dark agrees (brightness 0.3), vivid does not (saturation 0.2)
    persona(
        2,
        T,
        ["Alpha Daily", "r/GammaCats"],
        ["dark", "vivid", "meow"],
        "whisker stuff, funny",
        age="60",
        gender="female",
        region="Asia",
    ),
    # no community (knitting is nobody's word); golden hour is warm, hue 0.45 is not; a
    # user's name as a visual interest is noise, never shown
    persona(3, T, ["knitting"], ["golden hour light", "Zz_Cat"], "Nothing here.", age="unknown"),
    persona(4, T, ["alpha photos"], ["film"], "", gender="male"),  # not in the truth
    persona(1, OTHER, ["beta garden"], ["soft"], None),  # beta only: recall 1/2; soft agrees
    persona(2, OTHER, None, None, None, status="failed"),
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    gt = write_truth(tmp_path_factory.mktemp("fidelity"))
    users = pd.DataFrame({"user_id": list(AUTHORS), "author": list(AUTHORS.values())})
    return gt, pd.DataFrame(PERSONAS), users


def test_fidelity_figures_follow_from_the_hand_made_truth(data):
    gt, personas, users = data
    template, other = sorted(persona_fidelity(personas, gt, users=users), key=lambda r: r.llm)[::-1]
    assert template.llm == T and (template.personas, template.failed, template.unjoined) == (
        3,
        0,
        1,
    )
    assert template.precision == pytest.approx(0.75)  # (1 + 1/2) / 2
    assert template.recall == 1.0 and template.naming_none == 1
    assert template.generic_share == pytest.approx(1 / 3)
    assert template.disliked_share == pytest.approx(1 / 3)
    assert template.demographics["age"] == pytest.approx((2 / 3, 1.0))
    assert template.demographics["gender"] == pytest.approx((2 / 3, 0.5))
    assert template.demographics["region"] == pytest.approx((1 / 3, 1.0))
    assert template.colour_coverage == 1.0 and template.colour_words == 4
    assert template.colour_agreement == pytest.approx(0.5)  # (1 + 1/2 + 0) / 3
    # each persona's words against the next user's taste: warm vs blue 0, dark/vivid vs a
    # bright muted taste 0, golden hour vs red 1
    assert template.colour_agreement_shuffled == pytest.approx(1 / 3)
    assert template.noise_share == pytest.approx(2 / 8)
    assert template.noise_top == [("tried", 1)]  # the user's name left out
    assert (other.llm, other.personas, other.failed) == (OTHER, 1, 1)
    assert (other.precision, other.recall, other.colour_agreement) == (1.0, 0.5, 1.0)
    assert math.isnan(other.colour_agreement_shuffled)  # one persona: no other taste


def test_the_join_through_image_posts_matches_and_returns_no_names(data):
    gt, personas, users = data
    posts = pd.DataFrame({"user_id": [1, 2, 2, 3, 4], "post_id": ["p1", "p2", "p2b", "p3", "p4"]})
    by_users = fidelity_frame(persona_fidelity(personas, gt, users=users))
    by_posts = fidelity_frame(persona_fidelity(personas, gt, posts=posts))
    pd.testing.assert_frame_equal(by_posts, by_users)
    table = fidelity_table(persona_fidelity(personas, gt, posts=posts))
    assert list(table.columns) == ["measure", OTHER, T]
    text = table.to_csv() + by_posts.to_csv()
    assert not any(name.lower() in text.lower() for name in AUTHORS.values())


def test_colour_words_and_their_directions():
    assert colour_words(["warm golden hour", "high contrast film grain", "Pastel skies"]) == [
        "golden hour",
        "warm",
        "high contrast",
        "grain",
        "pastel",
    ]
    assert colour_words(["yellow-green tones", "mint green", "green"]) == [
        "yellow green",
        "mint green",
        "green",
    ]
    red = dict(zip(FIELDS.split(","), [0.02, 0.15, 0.5, 0.5, 0.5, 0.5], strict=True))
    assert agrees("red", red) and agrees("orange", red) and not agrees("blue", red)
    assert agrees("warm", red) and not agrees("cool", red)
    assert agrees("crimson", red)  # the wheel wraps
    assert not agrees("bright", red) and agrees("dark", red)  # 0.5 is not above 0.5


def test_a_truth_without_communities_is_refused(tmp_path):
    gt = write_truth(tmp_path)
    (gt / "communities.parquet").unlink()
    with pytest.raises(MissingTruth, match="communities.parquet"):
        persona_fidelity(
            pd.DataFrame(PERSONAS), gt, users=pd.DataFrame({"user_id": [], "author": []})
        )


def test_the_command_prints_a_table_per_llm(data, tmp_path):
    from typer.testing import CliRunner

    from jobs.cli import app
    from schemas.tables import table
    from storage.lake import Lake

    gt, personas, users = data
    lake = Lake(tmp_path / "lake")
    schema = table("gold/personas").schema
    rows = [
        {f.name: p.get(f.name) for f in schema}
        | {"evidence_mode": "full", "evidence_subreddits": [], "evidence_ids": []}
        | {"evidence_tokens": 0, "tokenizer": "w", "evidence": "", "template": p["llm"] == T}
        | {"prompt_version": "v", "prompt_tokens": 0, "completion_tokens": 0, "attempts": 1}
        | {"seconds": 0.0, "request_id": f"r{i}"}
        for i, p in enumerate(PERSONAS)
    ]
    lake.write_table("gold/personas", pa.Table.from_pylist(rows, schema))
    users_schema = table("silver/users").schema
    lake.write_table(
        "silver/users",
        pa.Table.from_pylist(
            [
                {"user_id": u, "author": a, "posts": 1, "comments": 1, "subreddits": 1}
                | {"first_utc": 0, "last_utc": 1, "role": "train"}
                for u, a in AUTHORS.items()
            ],
            users_schema,
        ),
    )
    out = CliRunner().invoke(
        app, ["persona-check", "--ground-truth", str(gt), f"lake.root={lake.root}"]
    )
    assert out.exit_code == 0, out.output
    assert f"persona fidelity — {T}" in out.output and f"persona fidelity — {OTHER}" in out.output
    assert "community precision" in out.output and "0.750" in out.output
    assert "zz_" not in out.output.lower()
