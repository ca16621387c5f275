"""Agreement with the planted truth: the hue-wrapping taste distance, SROCC/PLCC of
scorers against a synthetic planted distance (sign: against −distance), and the truth
join through the ground truth's names, which never come out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.agreement import agreement_table, taste_distance, truth_distances


def test_hues_wrap_around_one_and_other_fields_do_not():
    a = np.array([[0.95, 0.5, 0.9, 0.5, 0.5, 0.5]])
    b = np.array([[0.05, 0.5, 0.1, 0.5, 0.5, 0.5]])
    assert taste_distance(a, b)[0] == pytest.approx(np.hypot(0.1, 0.8))


def test_srocc_and_plcc_against_a_planted_distance():
    rng = np.random.default_rng(0)
    distance = rng.random(400)
    df = pd.DataFrame(
        {
            "good": -distance + rng.normal(0, 0.05, 400),
            "reversed": distance,
            "noise": rng.random(400),
            "constant": np.ones(400),
            "sparse": [np.nan] * 398 + [1.0, 2.0],
        }
    )
    labels = {c: c for c in df.columns}
    t = agreement_table(df, distance, labels).set_index("scorer")
    assert t.loc["good", "srocc"] > 0.9 and t.loc["good", "plcc"] > 0.9
    assert t.loc["good", "srocc_p"] < 1e-10
    assert t.loc["reversed", "srocc"] == pytest.approx(-1.0)
    assert abs(t.loc["noise", "srocc"]) < 0.15 and t.loc["noise", "srocc_p"] > 0.01
    assert np.isnan(t.loc["constant", "srocc"]) and t.loc["constant", "pairs"] == 400
    assert t.loc["sparse", "pairs"] == 2 and np.isnan(t.loc["sparse", "plcc"])
    assert "missing" not in agreement_table(df, distance, {"missing": "x"})["scorer"].tolist()


def write_truth(root, users: dict[str, list[float]], images: list[tuple]) -> None:
    """A ground_truth folder like the sample world's (names included)."""
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"author": list(users), "taste": list(users.values())}).to_parquet(
        root / "users.parquet"
    )
    pd.DataFrame(images, columns=["post_id", "position", "author", "taste"]).to_parquet(
        root / "images.parquet"
    )


def test_the_truth_join_goes_through_reference_authors_and_returns_only_distances(tmp_path):
    t_alice, t_bob = [0.1, 0.2, 0.5, 0.5, 0.5, 0.5], [0.9, 0.2, 0.1, 0.5, 0.5, 0.5]
    img_a, img_b = [0.12, 0.2, 0.5, 0.5, 0.5, 0.4], [0.95, 0.25, 0.1, 0.5, 0.5, 0.5]
    write_truth(
        tmp_path / "gt",
        {"zz_alice_secret": t_alice, "zz_bob_secret": t_bob},
        [
            ("ra", 0, "zz_alice_secret", img_a),
            ("ra", 1, "zz_alice_secret", img_a),
            ("rb", 0, "zz_bob_secret", img_b),
        ],
    )
    references = pd.DataFrame({"user_id": [7, 7, 9], "post_id": ["ra", "ra", "rb"]})
    agreement = pd.DataFrame(
        {"user_id": [7, 9, 9, 5], "post_id": ["rb", "ra", "ra", "ra"], "position": [0, 0, 1, 0]}
    )
    d = truth_distances(agreement, references, tmp_path / "gt")
    assert d.dtype == np.float64 and d.shape == (4,)
    assert d[0] == pytest.approx(taste_distance(t_alice, img_b)[0])  # user 7 is alice
    assert d[1] == pytest.approx(taste_distance(t_bob, img_a)[0]) == d[2]
    assert np.isnan(d[3])  # user 5 has no reference post: no truth, never a guess
