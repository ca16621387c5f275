"""IPF to population marginals: the target file loader and its errors, raking on the
users who know each attribute (by hand), the report's IPF table with coverage, the WPP
CSV converter, and the benchmark draw stratified by inferred demographics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from evaluation.stats import rake_known
from evaluation.summary import ipf_table
from generation.bench import demographic_weights, draw_by_demographics, pool_demographics
from llm.demographic_targets import TargetError, category, load_targets, resolve
from llm.wpp_targets import from_wpp, main
from schemas.bench import BENCH_USERS

REPO = Path(__file__).resolve().parents[2]
SOURCE = {"publisher": "a test", "figures": "made up for this test"}


def write(tmp_path: Path, doc: dict, name: str = "t.yaml") -> Path:
    import yaml

    p = tmp_path / name
    p.write_text(json.dumps(doc) if name.endswith(".json") else yaml.safe_dump(doc))
    return p


def test_the_shipped_example_loads_with_its_source():
    t = load_targets(REPO / "conf/ipf/example-gender.yaml")
    assert t.attributes == {"gender": {"female": 0.5, "male": 0.5}}
    assert "not a published figure" in t.label


def test_a_valid_file_with_a_joint_attribute_is_normalised(tmp_path):
    doc = {
        "source": SOURCE,
        "attributes": {
            "Age x Gender": {"18-24 x Female": 0.2, "18-24 x male": 0.2, "55+ x female": 0.6},
            "region": {"europe": 0.333, "asia": 0.333, "africa": 0.333},  # within 0.005
        },
    }
    for name in ("t.yaml", "t.json"):
        t = load_targets(write(tmp_path, doc, name))
        assert t.attributes["age x gender"]["18-24 x female"] == pytest.approx(0.2)
        assert sum(t.attributes["region"].values()) == pytest.approx(1.0)
        assert t.attributes["region"]["asia"] == pytest.approx(1 / 3)
    # a persona's category under the joint attribute; unknown when a part is
    assert category({"age": "18-24", "gender": "Female"}, "age x gender") == "18-24 x female"
    assert category({"age": "18-24", "gender": None}, "age x gender") is None


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"gender": {"female": 0.5, "male": 0.4}}, "sum to 0.9000, not 1"),
        ({"income": {"high": 1.0}}, "attribute 'income': personas carry"),
        ({"age": {"teen": 1.0}}, "'teen' is no age personas carry"),
        ({"gender x gender": {"female x male": 1.0}}, "distinct"),
        ({"age x gender": {"18-24": 1.0}}, "needs 2 part"),
        ({"gender": {"female": -0.5, "male": 1.5}}, "must be a number >= 0"),
        ({"gender": []}, "needs a mapping"),
    ],
)
def test_bad_targets_are_refused_with_what_is_wrong(tmp_path, attributes, message):
    with pytest.raises(TargetError, match=message):
        load_targets(write(tmp_path, {"source": SOURCE, "attributes": attributes}))


def test_a_file_needs_its_source_and_known_keys(tmp_path):
    ok = {"gender": {"female": 0.5, "male": 0.5}}
    with pytest.raises(TargetError, match="'source' is required"):
        load_targets(write(tmp_path, {"attributes": ok}))
    with pytest.raises(TargetError, match="source needs figures"):
        load_targets(write(tmp_path, {"source": {"publisher": "x"}, "attributes": ok}))
    with pytest.raises(TargetError, match="unknown key"):
        load_targets(write(tmp_path, {"source": SOURCE, "attributes": ok, "year": 2024}))
    with pytest.raises(TargetError, match="not found"):
        load_targets(tmp_path / "missing.yaml")


def test_the_file_wins_over_the_inline_targets_and_inline_ones_are_checked(tmp_path):
    path = write(tmp_path, {"source": SOURCE, "attributes": {"age": {"55+": 1.0}}})
    inline = {"gender": {"female": 0.5, "male": 0.5}}
    assert resolve(str(path), inline).attributes == {"age": {"55+": 1.0}}
    assert resolve(None, inline).attributes == inline
    assert resolve(None, {}) is None
    with pytest.raises(TargetError, match="report.ipf_targets"):
        resolve(None, {"gender": {"f": 1.0}})
    # a profile with bad inline targets fails when the config is composed, not at the report
    from jobs.config import load_config

    cfg = load_config(overrides=[f"report.ipf_targets_file={path}"])
    assert cfg.report.ipf_targets_file == str(path) and cfg.bench.demographic_targets is None
    with pytest.raises(Exception, match="shares sum to 1.4000"):
        load_config(overrides=["report.ipf_targets.gender.female=0.9"])


def test_raking_on_known_rows_by_hand():
    # three users know gender (2 m, 1 f), one does not: the known ones share their weight
    # (3) half and half, the unknown keeps 1
    r = rake_known({"g": ["m", "m", "f", None]}, {"g": {"m": 0.5, "f": 0.5}})
    assert r.weights == pytest.approx([0.75, 0.75, 1.5, 1.0])
    assert r.raked == ["g"] and r.skipped == {}
    # a value the targets do not list counts as unknown; an attribute whose target
    # category has no known row is left out, with the reason
    r = rake_known(
        {"g": ["m", "x", "f", "f"], "age": ["old", None, None, "old"]},
        {"g": {"m": 0.5, "f": 0.5}, "age": {"old": 0.5, "young": 0.5}},
    )
    assert r.weights == pytest.approx([1.5, 1.0, 0.75, 0.75])
    assert r.skipped == {"age": "no known row for 'young'"}


def test_raking_meets_every_attribute_on_its_known_rows():
    rng = np.random.default_rng(0)
    n = 60
    age = rng.choice(["18-24", "25-34", "55+", None], n, p=[0.5, 0.2, 0.1, 0.2]).tolist()
    gender = rng.choice(["female", "male", None], n, p=[0.2, 0.5, 0.3]).tolist()
    targets = {
        "age": {"18-24": 0.2, "25-34": 0.3, "55+": 0.5},
        "gender": {"female": 0.5, "male": 0.5},
    }
    w = rake_known({"age": age, "gender": gender}, targets).weights
    assert w.mean() == pytest.approx(1.0)
    for attr, cats in (("age", age), ("gender", gender)):
        known = np.array([c is not None for c in cats])
        for c, share in targets[attr].items():
            got = w[np.array(cats, dtype=object) == c].sum() / w[known].sum()
            assert got == pytest.approx(share, abs=1e-8)


def test_the_ipf_table_shows_raked_figures_and_coverage_per_attribute():
    # four users: 0, 1 male 18-24 (CS 10), 2 female age unknown (CS 30), 3 unknown (CS 50)
    demo = {
        0: {"gender": "male", "age": "18-24"},
        1: {"gender": "male", "age": "18-24"},
        2: {"gender": "female"},
        3: {},
    }
    clip = {0: 10.0, 1: 10.0, 2: 30.0, 3: 50.0}
    rows = [
        {"method": m, "method_llm": "t", "user_id": u, "clip_ref": clip[u], "preference": 1.0}
        for m in ("A", "B")
        for u in range(4)
    ]
    targets = {
        "gender": {"female": 0.5, "male": 0.5},
        "age": {"18-24": 0.4, "55+": 0.6},  # nobody known 55+: age cannot be raked
    }
    table, note = ipf_table(pd.DataFrame(rows), demo, targets, source="a test")
    a = table.set_index("method").loc["A"]
    # gender raked on users 0-2 (weights 0.75, 0.75, 1.5), user 3 keeps 1: (7.5+7.5+45+50)/4
    assert a["clip_ref"] == pytest.approx(25.0)
    assert a["clip_ref_ipf"] == pytest.approx(27.5)
    assert a["preference_ipf"] == pytest.approx(1.0)
    assert a["known gender"] == pytest.approx(0.75) and a["known age"] == pytest.approx(0.5)
    assert "source: a test" in note and "gender known for 3 of 4" in note
    assert "age not raked (no known row for '55+'): every method" in note
    assert "not applicable" not in note
    # the report shows the raked figures beside the unweighted ones, and the coverage
    from evaluation.stages.report import IPF_COLUMNS, table_html

    page = table_html(table, IPF_COLUMNS | {c: c for c in table if c.startswith("known ")}, "i")
    for head in ("<th>CS</th>", "<th>CS (IPF)</th>", "<th>pref (IPF)</th>", "<th>known age</th>"):
        assert head in page
    assert "<td>27.5" in page
    # no attribute rakeable: NaN and said so
    table, note = ipf_table(pd.DataFrame(rows), demo, {"age": targets["age"]})
    assert table["clip_ref_ipf"].isna().all() and "not applicable" in note


def test_the_report_stage_declares_the_target_files():
    from evaluation.stages.report import STAGE as REPORT
    from generation.stages.split import STAGE as SPLIT

    assert "report.ipf_targets_file" in REPORT.files  # fingerprinted by content
    assert "bench.demographic_targets" in SPLIT.files
    assert "silver/snippets" in SPLIT.inputs


def _wpp_rows(ages: list[str], location: str, female: float, male: float) -> list[dict]:
    return [
        {"Location": location, "Time": 2024, "Variant": "Medium", "AgeGrp": a}
        | {"PopFemale": female, "PopMale": male}
        for a in ages
    ]


def test_wpp_csv_becomes_adult_shares_by_band_sex_and_region(tmp_path):
    # single ages 10..60 for the world (females 2, males 1 at each age), and a 2023 row
    # that must not count; two regions with 1 and 3 per age and sex
    ages = [str(a) for a in range(10, 60)] + ["60+"]
    rows = _wpp_rows(ages, "World", 2.0, 1.0)
    rows += [r | {"Time": 2023, "PopMale": 1000.0} for r in _wpp_rows(["20"], "World", 0, 0)]
    rows += _wpp_rows(ages, "Europe", 1.0, 1.0) + _wpp_rows(ages, "Africa", 3.0, 3.0)
    csv = tmp_path / "wpp.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    got = from_wpp(csv, 2024)["attributes"]
    adults = 60 - 18 + 1  # ages 18..59 and the 60+ row
    assert got["gender"] == pytest.approx({"female": 2 / 3, "male": 1 / 3}, abs=1e-6)
    assert got["age"]["18-24"] == pytest.approx(7 / adults, abs=1e-6)
    assert got["age"]["55+"] == pytest.approx(6 / adults, abs=1e-6)  # 55..59 and 60+
    assert got["age x gender"]["25-34 x female"] == pytest.approx(10 * 2 / 3 / adults, abs=1e-6)
    assert got["region"] == pytest.approx({"europe": 0.25, "africa": 0.75}, abs=1e-6)
    out = tmp_path / "targets.yaml"
    main([str(csv), "--year", "2024", "--out", str(out)])
    t = load_targets(out)
    assert "World Population Prospects 2024" in t.label and set(t.attributes) == set(got)
    # five-year groups cannot be cut at 18
    pd.DataFrame(_wpp_rows(["15-19", "20-24"], "World", 1, 1)).to_csv(csv, index=False)
    with pytest.raises(TargetError, match="single-age file"):
        from_wpp(csv, 2024)


def test_pool_demographics_come_from_the_cue_lexicon():
    snippets = pa.table(
        {
            "user_id": pa.array([1, 1, 2, 3], pa.int32()),
            "text": [
                "As a woman in my early 20s I love this",
                "my roommate agrees",
                "I'm 40 now and as a dad I say cheers mate",
                "nice picture",
            ],
        }
    )
    demo = pool_demographics(snippets)
    assert (demo[1]["gender"], demo[1]["age"]) == ("female", "18-24")
    assert (demo[2]["gender"], demo[2]["age"]) == ("male", "35-44")
    assert demo[3]["gender"] is None and demo[3]["age"] is None


def test_demographic_weights_by_hand():
    demo = [{"gender": "male"}, {"gender": "male"}, {"gender": "male"}, {"gender": "female"}, {}]
    w = demographic_weights(demo, {"gender": {"female": 0.5, "male": 0.5}})
    # the pool's known shares are 3/4 male, 1/4 female; the unknown user stays at 1
    assert w == pytest.approx([2 / 3, 2 / 3, 2 / 3, 2.0, 1.0])


def test_the_stratified_draw_moves_the_known_users_toward_the_targets():
    # 80 users: 40 known male, 10 known female, 30 unknown; draw 20 at target 50/50
    n = 80
    gender = ["male"] * 40 + ["female"] * 10 + [None] * 30
    demo = {u: {"gender": g} for u, g in enumerate(gender)}
    pool = pa.Table.from_pylist(
        [{"user_id": u, "stratum": "s", "images": 3, "references": []} for u in range(n)],
        schema=BENCH_USERS,
    )
    targets = {"gender": {"female": 0.5, "male": 0.5}}
    drawn = draw_by_demographics(pool, demo, targets, 20, seed=0)
    ids = drawn["user_id"].to_pylist()
    assert len(ids) == 20 and drawn.schema == BENCH_USERS
    known = [gender[u] for u in ids if gender[u]]
    female = known.count("female") / len(known)
    assert female > 0.35  # the pool's known share is 0.2
    assert any(gender[u] is None for u in ids)  # unknown users still come in
    assert draw_by_demographics(pool, demo, targets, 20, seed=0)["user_id"].to_pylist() == ids
    keys = {u: f"k{u}" for u in range(n)}  # content keys, not dense ids, seed the draw
    by_key = draw_by_demographics(pool, demo, targets, 20, seed=0, keys=keys)
    assert by_key.num_rows == 20
    # a category the targets give 0 is never drawn while others remain
    drawn = draw_by_demographics(pool, demo, {"gender": {"female": 1.0, "male": 0.0}}, 30)
    assert not any(gender[u] == "male" for u in drawn["user_id"].to_pylist())
