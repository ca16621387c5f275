"""The k-shot sweep (`rewrite.k: [3, 5]`): config validation, the registry's ``k_shot@K``
variants, the rewrite stage's planned rows and their template replies (through the real
fan-out `process`, parser and row schema), and the report's 0/k-shot table. One integer
keeps the plain ``k_shot`` rows."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from jobs.config import ConfigError, load_config
from schemas.methods import REWRITE_METHODS, get_method, method_rank

#: user 1's earlier titles, newest first: only the 4th and 5th mention zeppelins
TITLES = [
    "harbour lighthouse at dawn",
    "harbour boats in fog",
    "lighthouse beam over harbour",
    "zeppelin over the zeppelin hangar",
    "zeppelin mooring mast",
    "old barn in snow",
]


def _cfg(*extra: str):
    return load_config(None, ["rewrite.methods=[zero_shot,k_shot]", *extra])


def test_k_is_one_integer_or_a_list_of_distinct_positive_ones():
    one = load_config(None, ["rewrite.k=4"]).rewrite
    assert one.k == 4 and one.most_k == 4
    assert one.row_methods() == list(REWRITE_METHODS)  # today's rows, plain k_shot
    swept = load_config(None, ["rewrite.k=[3,5]"]).rewrite
    names = swept.row_methods()
    assert "k_shot" not in names and names.count("k_shot@3") == names.count("k_shot@5") == 1
    assert names.index("k_shot@3") + 1 == names.index("k_shot@5") and swept.most_k == 5
    for bad in ("0", "-2", "[3,3]", "[]", "[3,0]", "x", "true", "2.5", "[3,x]"):
        with pytest.raises(ConfigError, match=r"^config error: rewrite\.k: .*(positive|twice)"):
            load_config(None, [f"rewrite.k={bad}"])
    with pytest.raises(ConfigError, match="rewrite.methods: .*unknown rewrite method 'k_shot@5'"):
        load_config(None, ["rewrite.methods=[k_shot@5]"])  # variants come from rewrite.k


def test_a_variant_is_its_method_with_k_and_sorts_in_its_place():
    five = get_method("k_shot@5")
    plain = get_method("k_shot")
    assert (five.name, five.k, five.base, plain.k, plain.base) == (
        "k_shot@5",
        5,
        "k_shot",
        None,
        "k_shot",
    )
    assert five.build() is plain.build() and five.examples == plain.examples == "recent"
    for bad, why in (("zero_shot@3", "no @K variants"), ("k_shot@0", "positive"), ("x@3", "unk")):
        with pytest.raises(ValueError, match=why):
            get_method(bad)
    names = ["viper", "k_shot@5", "none", "k_shot@10", "zzz", "k_shot@3", "zero_shot"]
    assert sorted(names, key=method_rank) == [
        "none",
        "zero_shot",
        "k_shot@3",
        "k_shot@5",
        "k_shot@10",
        "viper",
        "zzz",
    ]


def _persona(words: list[str], subs: list[str]) -> dict:
    return {
        "status": "done",
        "reason": None,
        "demographics": None,
        "interests": words,
        "affective_traits": ["calm"],
        "visual_interests": words,
        "text": f"I like {' and '.join(words)}.",
        "evidence_subreddits": subs,
    }


def _plan(cfg):
    from generation.stages.rewrite import Plan, newest
    from schemas.methods import get_method

    label = cfg.llm.specs()[0].label
    return Plan(
        methods=[get_method(n) for n in cfg.rewrite.row_methods()],
        prompts=[
            {"user_id": 1, "prompt_id": "p1", "prompt": "a quiet street"},
            {"user_id": 2, "prompt_id": "p2", "prompt": "a bowl of fruit"},
        ],
        titles={1: [(f"t{i}", t) for i, t in enumerate(TITLES)], 2: [("u0", "ripe pears")]},
        personas={
            (1, label): _persona(["teal"], ["sailing"]),
            (2, label): _persona(["amber"], ["cooking"]),
        },
        prefs={},
        keys={1: "key-one", 2: "key-two"},
        sources={"recent": newest(cfg.rewrite.most_k)},
        seed=0,
    )


def _rows(cfg) -> list[dict]:
    """bench/rewrites rows of the plan for the template model, made as the stage makes
    them (the fan-out's `process`, the rewrite parser, `to_row`, the table's schema)."""
    from generation.rewrite import REPLY_PARSERS
    from generation.stages.rewrite import plan_work
    from llm import make_backend
    from llm.fanout import process
    from llm.tokens import counter, tokenizer_source
    from schemas.tables import table

    spec, rt = cfg.llm.specs()[0], cfg.llm.runtime()
    w = plan_work(_plan(cfg), spec, rt)
    assert not w.direct  # every row needs the LLM
    backend = make_backend(spec.backend, spec.model, None, None, rt, 1)
    count = counter(tokenizer_source(spec.backend, spec.model, spec.tokenizer)).count
    results = asyncio.run(process(backend, w.requests, count, REPLY_PARSERS))
    rows = [w.to_row(r, res) for r, res in zip(w.requests, results, strict=True)]
    return pa.Table.from_pylist(rows, schema=table("bench/rewrites").schema).to_pylist()


def test_a_k_list_makes_one_row_per_k_showing_the_k_newest_titles():
    rows = _rows(_cfg("rewrite.k=[3,5]"))
    by = {(r["user_id"], r["method"]): r for r in rows}
    assert sorted(by) == [(u, m) for u in (1, 2) for m in ("k_shot@3", "k_shot@5", "zero_shot")]
    assert all(r["status"] == "done" for r in rows)
    assert by[1, "k_shot@3"]["examples"] == TITLES[:3]
    assert by[1, "k_shot@5"]["examples"] == TITLES[:5]
    assert by[2, "k_shot@3"]["examples"] == by[2, "k_shot@5"]["examples"] == ["ripe pears"]
    assert len({r["rewrite_id"] for r in rows}) == len({r["request_id"] for r in rows}) == 6
    # the template keys on the base method: k_shot@5 shows the 5 titles, zeppelins included
    assert "zeppelin" in by[1, "k_shot@5"]["prompt"]
    assert "zeppelin" not in by[1, "k_shot@3"]["prompt"]
    assert "zeppelin" not in by[1, "zero_shot"]["prompt"]


def test_one_integer_keeps_the_plain_k_shot_rows_and_their_ids():
    from generation.rewrite import rewrite_id

    cfg = _cfg("rewrite.k=3")
    plain = {(r["user_id"], r["method"]): r for r in _rows(cfg)}
    swept = {(r["user_id"], r["method"]): r for r in _rows(_cfg("rewrite.k=[3,5]"))}
    assert sorted(m for u, m in plain if u == 1) == ["k_shot", "zero_shot"]
    label = cfg.llm.specs()[0].label
    assert plain[1, "k_shot"]["rewrite_id"] == rewrite_id("key-one", "p1", "k_shot", label)
    # the same 3 titles and reply, but a row of its own (another method, another request)
    assert plain[1, "k_shot"]["examples"] == swept[1, "k_shot@3"]["examples"]
    assert plain[1, "k_shot"]["prompt"] == swept[1, "k_shot@3"]["prompt"]
    assert plain[1, "k_shot"]["request_id"] != swept[1, "k_shot@3"]["request_id"]
    assert plain[1, "zero_shot"]["request_id"] == swept[1, "zero_shot"]["request_id"]


def test_the_shots_table_reads_zero_shot_as_0_and_each_variant_as_its_k():
    from evaluation.summary import persona_gains, shots_table

    def row(method: str, cs: float, llm: str = "template:template") -> dict:
        return {
            "method": method,
            "llm": llm,
            "images": 4,
            "clip_ref": cs,
            "clip_prompt": cs,
            "preference": cs / 100,
            "judge": np.nan,
            "cmmd": 0.1,
            "cs_win_vs_none": cs / 100,
            "cs_p_vs_none": 0.5,
        }

    table = pd.DataFrame(
        [row("none", 50), row("zero_shot", 55), row("k_shot@5", 70), row("k_shot@3", 60)]
        + [row("swapped", 52), row("viper", 65)]
    )
    shots = shots_table(table, [3, 5])
    assert shots[["shots", "method", "clip_ref"]].values.tolist() == [
        [0, "zero_shot", 55],
        [3, "k_shot@3", 60],
        [5, "k_shot@5", 70],
    ]
    assert shots["cs_win_vs_none"].tolist() == [0.55, 0.6, 0.7]
    one = table[table["method"] != "k_shot@5"].replace({"k_shot@3": "k_shot"})
    assert shots_table(one, 3)[["shots", "method"]].values.tolist() == [
        [0, "zero_shot"],
        [3, "k_shot"],
    ]
    assert shots_table(table[~table["method"].str.startswith("k_shot")], 3).empty
    gains = persona_gains(table)
    assert gains["method"].tolist() == ["zero_shot", "k_shot@3", "k_shot@5", "swapped"]
    assert gains.set_index("method")["clip_ref_gain_vs_none"]["k_shot@5"] == 20
