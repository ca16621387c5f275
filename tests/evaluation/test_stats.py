"""CMMD, CLIPScore, win rates and IPF against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from evaluation.cmmd import cmmd
from evaluation.stats import clip_score, clip_score_to_set, ipf_weights, weighted_mean, win_rate
from evaluation.summary import ipf_table


def test_cmmd_of_two_points_matches_the_formula_by_hand():
    # k_xx = k_yy = 1 (single points), k_xy = exp(-|x-y|^2 / (2·10^2)) = exp(-25/200)
    expected = 1000 * (1 + 1 - 2 * math.exp(-0.125))
    assert cmmd(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])) == pytest.approx(expected)
    assert expected == pytest.approx(235.0062, abs=1e-3)


def test_cmmd_is_the_biased_estimator_with_diagonal_terms():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)) * 4, rng.normal(size=(7, 3)) * 4 + 1

    def k(a, b):
        return math.exp(-np.sum((a - b) ** 2) / 200)

    kxx = sum(k(a, b) for a in x for b in x) / 25  # every pair, i == j included
    kyy = sum(k(a, b) for a in y for b in y) / 49
    kxy = sum(k(a, b) for a in x for b in y) / 35
    assert cmmd(x, y) == pytest.approx(1000 * (kxx + kyy - 2 * kxy), rel=1e-9)
    assert cmmd(x, x) == pytest.approx(0.0, abs=1e-9)
    assert cmmd(x, y) == pytest.approx(cmmd(y, x))
    with pytest.raises(ValueError, match="same width"):
        cmmd(x, y[:, :2])


def test_clip_score_is_100_times_the_clamped_cosine():
    assert clip_score(np.array([[1.0, 0.0]]), np.array([[1.0, 1.0]]))[0] == pytest.approx(
        100 / math.sqrt(2)
    )
    assert clip_score(np.array([[1.0, 0.0]]), np.array([[-1.0, 0.2]]))[0] == 0.0
    refs = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    # cosines 1, 0, -1 -> 100, 0, 0 -> mean 33.33
    assert clip_score_to_set(np.array([2.0, 0.0]), refs) == pytest.approx(100 / 3)


def test_win_rate_counts_pairs_and_tests_them_exactly():
    r = win_rate([3, 2, 1, 5], [1, 2, 2, 4])
    assert (r["wins"], r["losses"], r["ties"]) == (2, 1, 1)
    assert r["win_rate"] == pytest.approx(2 / 3)
    assert r["p_value"] == pytest.approx(1.0)
    r = win_rate([1] * 10, [0] * 10)
    assert r["win_rate"] == 1.0 and r["p_value"] == pytest.approx(2 * 0.5**10)
    assert math.isnan(win_rate([1, 1], [1, 1])["win_rate"])
    r = win_rate([3, float("nan"), 1], [1, 2, float("nan")])  # a missing score is no tie
    assert (r["wins"], r["losses"], r["ties"], r["unscored"]) == (1, 0, 0, 2)


def test_ipf_matches_one_marginal_exactly_by_hand():
    w = ipf_weights({"gender": ["m", "m", "m", "f"]}, {"gender": {"m": 0.5, "f": 0.5}})
    # three m rows share half the weight, the one f row the other half; mean weight 1
    assert w == pytest.approx([2 / 3, 2 / 3, 2 / 3, 2.0])
    assert weighted_mean([1, 1, 1, 5], w) == pytest.approx(3.0)  # (1·2 + 5·2) / 4


def test_ipf_rakes_two_attributes_to_their_targets():
    age = ["young", "young", "old", "old", "old", "young"]
    region = ["eu", "us", "us", "us", "eu", "us"]
    targets = {"age": {"young": 0.3, "old": 0.7}, "region": {"eu": 0.6, "us": 0.4}}
    w = ipf_weights({"age": age, "region": region}, targets)
    for attr, cats in (("age", age), ("region", region)):
        for c, share in targets[attr].items():
            got = sum(wi for wi, ci in zip(w, cats, strict=True) if ci == c) / sum(w)
            assert got == pytest.approx(share, abs=1e-8)
    with pytest.raises(ValueError, match="no rows for age='middle'"):
        ipf_weights({"age": age}, {"age": {"middle": 1.0}})


def test_ipf_refuses_targets_the_rows_cannot_meet_together():
    a = ["x", "x", "y", "y"]
    b = ["p", "p", "q", "q"]  # b is a copy of a: shares 0.5 and 0.3 cannot both hold
    targets = {"a": {"x": 0.5, "y": 0.5}, "b": {"p": 0.3, "q": 0.7}}
    with pytest.raises(ValueError, match="no convergence"):
        ipf_weights({"a": a, "b": b}, targets)


def test_ipf_treats_none_as_unknown():
    w = ipf_weights({"g": ["m", None, None]}, {"g": {"m": 0.5, "unknown": 0.5}})
    assert w == pytest.approx([1.5, 0.75, 0.75])


def test_ipf_table_rakes_each_method_on_its_own_rows():
    # users 0, 1 male (CLIPScore 10), 2, 3 female (30); target 50/50 -> 20 for any method.
    # Method B lost three of each female user's four images: raked over all images of all
    # methods together it would read 15.7 and A 22.3.
    demo = {0: {"gender": "m"}, 1: {"gender": "m"}, 2: {"gender": "f"}, 3: {"gender": "f"}}
    rows = []
    for method, per_female in (("A", 4), ("B", 1)):
        for u in range(4):
            for _ in range(4 if u < 2 else per_female):
                rows.append(
                    {
                        "method": method,
                        "method_llm": "x",
                        "user_id": u,
                        "clip_ref": 10 + 20 * (u > 1),
                    }
                )
    table, note = ipf_table(pd.DataFrame(rows), demo, {"gender": {"m": 0.5, "f": 0.5}})
    assert table.set_index("method")["clip_ref_ipf"].to_dict() == pytest.approx({"A": 20, "B": 20})
    assert table.set_index("method")["clip_ref"].to_dict() == pytest.approx({"A": 20, "B": 14})
    assert "not applicable" not in note
