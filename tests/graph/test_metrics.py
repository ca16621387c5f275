"""The shared link-prediction and ImageAlign metrics on tiny embeddings whose answers are
worked out by hand.

Scores are dot products: with identity subreddit embeddings a user's row *is* their
score for every subreddit, which keeps the hand computations readable.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from graph.metrics import (
    edge_keys,
    image_recall_at_k,
    link_auc,
    per_user_auc,
    posting_accuracy,
    probe_image_recall,
    random_non_edges,
    recall_at_k,
)


def t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


# Two subreddits and one held-out edge per user, which is also the user's only known edge:
# the only non-edge a user has is the other subreddit, so every negative is known.
TWO_SUBS = t([[1, 0], [0, 1]])
HELD = np.array([[0, 1, 2, 3], [0, 0, 1, 0]])  # (user, subreddit) columns
OTHER = np.array([1, 1, 0, 1])  # each user's one non-edge
USERS = t(
    [
        [3.0, 1.0],  # u0: held-out s0 scores 3, non-edge s1 scores 1    -> positive wins
        [0.5, 2.0],  # u1: s0 0.5 vs s1 2                                -> loses
        [2.5, 4.0],  # u2: held-out s1 scores 4, non-edge s0 scores 2.5  -> wins
        [1.0, 1.0],  # u3: s0 1 vs s1 1                                  -> a tie
    ]
)
POS = [3.0, 0.5, 4.0, 1.0]
NEG = [1.0, 2.0, 2.5, 1.0]


def keys_of(pairs: np.ndarray, num_subs: int) -> np.ndarray:
    return edge_keys(pairs[0], pairs[1], num_subs)


def hand_auc(pos: list[float], neg: list[float]) -> float:
    """P(positive outscores negative), ties counting one half."""
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_edge_keys_sorted_unique():
    keys = edge_keys(np.array([2, 0, 2, 1]), np.array([1, 3, 1, 0]), 4)
    assert keys.dtype == np.int64
    assert keys.tolist() == [0 * 4 + 3, 1 * 4 + 0, 2 * 4 + 1]
    big = edge_keys(np.array([70_000], np.int32), np.array([69_999], np.int32), 100_000)
    assert big.tolist() == [70_000 * 100_000 + 69_999]  # no int32 overflow


def test_negatives_are_the_only_non_edge():
    """The premise of the hand computations below: with the same seed the metrics draw,
    every user's negative is their one non-edge."""
    keys = keys_of(HELD, 2)
    for n in (1, 3):
        neg = random_non_edges(HELD[0], n, 2, keys, np.random.default_rng(0))
        assert neg.shape == (4, n)
        assert (neg == OTHER[:, None]).all(), neg


def test_random_non_edges_avoid_known_edges():
    rng = np.random.default_rng(1)
    num_users, num_subs = 200, 20
    users = np.repeat(np.arange(num_users), 4)
    subs = np.concatenate([rng.choice(num_subs, 4, replace=False) for _ in range(num_users)])
    keys = edge_keys(users, subs, num_subs)
    assert len(keys) == 4 * num_users
    who = np.arange(num_users)
    neg = random_non_edges(who, 30, num_subs, keys, np.random.default_rng(0))
    assert neg.shape == (num_users, 30)
    assert neg.min() >= 0 and neg.max() < num_subs
    drawn = np.repeat(who, 30).astype(np.int64) * num_subs + neg.ravel()
    assert not np.isin(drawn, keys).any()
    # real draws, not one fixed subreddit: every subreddit comes up for someone
    assert set(neg.ravel().tolist()) == set(range(num_subs))
    # without known edges the same call is plain uniform sampling, known ones included
    free = random_non_edges(who, 30, num_subs, np.empty(0, np.int64), np.random.default_rng(0))
    assert np.isin(np.repeat(who, 30).astype(np.int64) * num_subs + free.ravel(), keys).any()


def test_link_auc_hand_computed():
    keys = keys_of(HELD, 2)
    auc = link_auc(USERS, TWO_SUBS, HELD, keys)
    # 4 positives vs 4 negatives (1, 2, 2.5, 1): 3 beats all four, 0.5 none, 4 all four,
    # 1 beats none and ties the two 1s (half each) -> (4 + 0 + 4 + 2 * 0.5) / 16
    assert hand_auc(POS, NEG) == pytest.approx(9 / 16)
    assert auc == pytest.approx(9 / 16)

    three = HELD[:, :3]
    assert link_auc(USERS, TWO_SUBS, three, keys_of(three, 2)) == pytest.approx(
        hand_auc(POS[:3], NEG[:3])
    )
    assert hand_auc(POS[:3], NEG[:3]) == pytest.approx(6 / 9)


def test_link_auc_perfect_reversed_and_flat():
    keys = keys_of(HELD, 2)
    # each user scores their held-out subreddit 10 + u and the other one u - 10
    good = torch.zeros(4, 2)
    for u, (s, o) in enumerate(zip(HELD[1], OTHER, strict=True)):
        good[u, s], good[u, o] = 10.0 + u, u - 10.0
    assert link_auc(good, TWO_SUBS, HELD, keys) == 1.0
    assert link_auc(-good, TWO_SUBS, HELD, keys) == 0.0
    assert link_auc(torch.zeros(4, 2), TWO_SUBS, HELD, keys) == 0.5
    assert math.isnan(link_auc(good, TWO_SUBS, np.zeros((2, 0), np.int64), keys))


def test_posting_accuracy_hand_computed():
    keys = keys_of(HELD, 2)
    # u0 and u2 outscore their one negative; u1 loses; u3 ties, which is not a win
    for candidates in (2, 3):
        got = posting_accuracy(USERS, TWO_SUBS, HELD, keys, candidates=candidates)
        assert got == pytest.approx(2 / 4), candidates
    assert posting_accuracy(USERS, TWO_SUBS, HELD[:, :3], keys, candidates=2) == pytest.approx(
        2 / 3
    )
    # u1's score flipped: now 3 of 4
    flipped = USERS.clone()
    flipped[1] = t([2.0, 0.5])
    assert posting_accuracy(flipped, TWO_SUBS, HELD, keys, candidates=2) == pytest.approx(3 / 4)
    assert math.isnan(posting_accuracy(USERS, TWO_SUBS, np.zeros((2, 0), np.int64), keys))


def test_posting_accuracy_needs_every_candidate_beaten():
    """Six subreddits, one user: the held-out one is beaten only by subreddit 5."""
    subs = torch.eye(6)
    user = t([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    keys = edge_keys(np.array([0]), np.array([4]), 6)
    pairs = np.array([[0], [4]])
    # seed 1 draws subreddit 2 as the one negative, seed 0 draws 5; with many, 5 comes up
    negs = {
        (c, seed): random_non_edges(np.array([0]), c - 1, 6, keys, np.random.default_rng(seed))
        for c, seed in ((2, 1), (2, 0), (40, 1))
    }
    assert negs[2, 1].tolist() == [[2]] and negs[2, 0].tolist() == [[5]], negs
    assert 5 in negs[40, 1] and 4 not in negs[40, 1], negs
    assert posting_accuracy(user, subs, pairs, keys, candidates=2, seed=1) == 1.0
    assert posting_accuracy(user, subs, pairs, keys, candidates=2, seed=0) == 0.0
    assert posting_accuracy(user, subs, pairs, keys, candidates=40, seed=1) == 0.0
    # the top subreddit held out wins against any number of candidates
    top = np.array([[0], [5]])
    assert posting_accuracy(user, subs, top, edge_keys(top[0], top[1], 6), candidates=40) == 1.0


def test_recall_at_k_hand_computed():
    subs = torch.eye(5)
    users = t(
        [
            [0.1, 5.0, 0.2, 3.0, 100.0],  # u0: held-out {1, 3}; known s4 (score 100) excluded
            [1.0, 3.0, 2.0, 0.0, 9.0],  # u1: held-out {0}; known s4 excluded
            [9.0, 9.0, 9.0, 9.0, 9.0],  # u2: nothing held out, ignored
        ]
    )
    pairs = np.array([[0, 0, 1], [1, 3, 0]])
    known = edge_keys(np.array([0, 1, 2]), np.array([4, 4, 0]), 5)
    # u0 ranks 1, 3, 2, 0 -> k=1: 1/2, k=2: 2/2; u1 ranks 1, 2, 0, 3 -> hits from k=3
    assert recall_at_k(users, subs, pairs, known, k=1) == pytest.approx((1 / 2 + 0) / 2)
    assert recall_at_k(users, subs, pairs, known, k=2) == pytest.approx((1 + 0) / 2)
    assert recall_at_k(users, subs, pairs, known, k=3) == pytest.approx((1 + 1) / 2)
    # the known edge, were it not excluded, would take u0's only top-1 slot
    nothing_known = np.empty(0, np.int64)
    assert recall_at_k(users, subs, pairs, nothing_known, k=1) == pytest.approx(0.0)
    assert recall_at_k(users, subs, pairs, nothing_known, k=2) == pytest.approx((1 / 2 + 0) / 2)
    # max_users keeps a seeded random sample of users: one of u0 (1/2) and u1 (0)
    one = {recall_at_k(users, subs, pairs, known, k=1, max_users=1, seed=s) for s in range(20)}
    assert one == {0.0, 0.5}
    # k beyond the subreddit count is every subreddit
    assert recall_at_k(users, subs, pairs, known, k=50) == pytest.approx(1.0)
    assert math.isnan(recall_at_k(users, subs, np.zeros((2, 0), np.int64), known))


def test_recall_at_k_known_edges_of_other_users_do_not_leak():
    """u1's known edge on subreddit 1 must not hide subreddit 1 from u0's ranking."""
    subs = torch.eye(3)
    users = t([[0.0, 2.0, 1.0], [0.0, 2.0, 1.0]])
    pairs = np.array([[0, 1], [1, 2]])
    known = edge_keys(np.array([1]), np.array([1]), 3)
    # u0: top-1 is s1, held out -> 1; u1: s1 known, top-1 is s2, held out -> 1
    assert recall_at_k(users, subs, pairs, known, k=1) == pytest.approx(1.0)
    # known on u0's held-out subreddit instead: u0 misses at k=1, u1 (s1 top) misses too
    known0 = edge_keys(np.array([0]), np.array([1]), 3)
    assert recall_at_k(users, subs, pairs, known0, k=1) == pytest.approx(0.0)


IMAGE_USERS = np.array([0, 0, 2, 5])  # user 0 has two images, users 2 and 5 one each
IMAGES = np.array([[2.0, 0, 0], [0, 0.5, 0], [0, 1, 0], [0, 0, 3]], np.float32)


def test_image_recall_identity_projection():
    # user 0's mean image points at (2, 0.5, 0); projections equal to the own mean image
    proj = torch.zeros(6, 3)
    proj[0], proj[2], proj[5] = t([2.0, 0.5, 0.0]), t([0, 1, 0]), t([0, 0, 1])
    proj[1] = proj[3] = proj[4] = t([5.0, 5.0, 5.0])  # users without images
    users = np.arange(6)
    assert image_recall_at_k(proj, IMAGE_USERS, IMAGES, users, k=1) == 1.0
    assert image_recall_at_k(proj, IMAGE_USERS, IMAGES, np.array([2, 5]), k=1) == 1.0


def test_image_recall_permutation():
    # a 3-cycle: every user points nearest to the next user's images, second nearest to
    # their own only for user 0
    proj = torch.zeros(6, 3)
    proj[0] = t([0.5, 1.0, 0.0])  # scores vs (u0, u2, u5) targets ~ (0.73, 1, 0) -> own 2nd
    proj[2] = t([0.5, 0.0, 1.0])  # (0.49, 0, 1): u5, then u0, own last
    proj[5] = t([1.0, 0.5, 0.0])  # (1.09, 0.5, 0): u0, then u2, own last
    users = np.array([0, 1, 2, 3, 4, 5])
    assert image_recall_at_k(proj, IMAGE_USERS, IMAGES, users, k=1) == 0.0
    assert image_recall_at_k(proj, IMAGE_USERS, IMAGES, users, k=2) == pytest.approx(1 / 3)
    assert image_recall_at_k(proj, IMAGE_USERS, IMAGES, users, k=3) == 1.0


def test_image_recall_ignores_users_without_images():
    proj = torch.zeros(6, 3)
    proj[0], proj[2] = t([2.0, 0.5, 0.0]), t([0, 1, 0])  # right
    proj[5] = t([1.0, 0.0, 0.0])  # wrong: nearest to u0
    proj[1] = proj[3] = proj[4] = t([1.0, 1.0, 1.0])
    with_images = image_recall_at_k(proj, IMAGE_USERS, IMAGES, np.array([0, 2, 5]), k=1)
    everyone = image_recall_at_k(proj, IMAGE_USERS, IMAGES, np.array([4, 0, 3, 2, 1, 5, 2]), k=1)
    assert with_images == pytest.approx(2 / 3)
    assert everyone == pytest.approx(2 / 3)  # not 2/5 or 2/6
    # fewer than two users with images, or no images at all: undefined
    assert math.isnan(image_recall_at_k(proj, IMAGE_USERS, IMAGES, np.array([1, 2, 3]), k=1))
    empty = np.zeros((0, 3), np.float32)
    assert math.isnan(image_recall_at_k(proj, np.empty(0, np.int64), empty, np.arange(6), k=1))


def test_per_user_auc_does_not_penalise_a_score_scale_that_varies_by_user():
    """User 0 scores everything high, user 1 everything low; each ranks its own held-out
    subreddit first: per-user AUC 1, the pooled AUC lower."""
    subs = torch.eye(4)
    users = torch.tensor([[10.0, 9, 9, 9], [-9.0, -10, -10, -10]])
    held = np.array([[0, 1], [0, 0]])  # (user 0, sub 0), (user 1, sub 0)
    keys = keys_of(held, 4)
    assert per_user_auc(users, subs, held, keys, negatives=3) == 1.0
    assert link_auc(users, subs, held, keys) < 1.0


def test_recall_ranks_only_what_is_not_a_known_positive_of_another_split():
    """A test user's validation edge outranks its test edge: with it excluded, the test
    edge is at the top (recall@1 = 1); left in the ranking it is a miss."""
    subs = torch.eye(3)
    users = torch.tensor([[1.0, 2.0, 0.0]])  # val sub 1 first, then test sub 0
    test = np.array([[0], [0]])
    val_key = keys_of(np.array([[0], [1]]), 3)
    assert recall_at_k(users, subs, test, val_key, k=1) == 1.0
    assert recall_at_k(users, subs, test, keys_of(np.zeros((2, 0), np.int64), 3), k=1) == 0.0


def test_probe_image_recall_reads_what_embeddings_carry():
    """A ridge probe fitted on some users finds the others' images when the embedding
    linearly encodes them, and sits near chance when it is noise."""
    rng = np.random.default_rng(0)
    n, d, dim = 400, 8, 5
    taste = rng.normal(size=(n, dim))
    image_users = np.repeat(np.arange(n), 3)
    images = (taste[image_users] + 0.3 * rng.normal(size=(3 * n, dim))).astype(np.float32)
    mix = rng.normal(size=(dim, d))
    informative = torch.from_numpy(taste @ mix + 0.1 * rng.normal(size=(n, d))).float()
    noise = torch.from_numpy(rng.normal(size=(n, d))).float()
    fit, held = np.arange(300), np.arange(300, n)
    good = probe_image_recall(informative, image_users, images, fit, held, k=5)
    bad = probe_image_recall(noise, image_users, images, fit, held, k=5)
    chance = 5 / len(held)
    assert good > 0.8, good
    assert bad < 3 * chance, bad
    # held-out users never fit the probe, even when listed among the fit users
    assert probe_image_recall(informative, image_users, images, np.arange(n), held, k=5) == good
    assert math.isnan(probe_image_recall(noise, image_users, images, held[:1], held[1:], k=5))


def test_image_metrics_with_no_user_that_posted_images():
    """A split whose users posted no image (a small world): no crash, nothing to score."""
    from graph.metrics import image_recall_at_k, mean_images

    images = np.ones((3, 4), np.float32)
    users, means = mean_images(np.array([7, 8]), np.array([1, 2, 2]), images)
    assert len(users) == 0 and means.shape == (0, 4)
    proj = torch.zeros(10, 4)
    assert math.isnan(image_recall_at_k(proj, np.array([1, 2, 2]), images, np.array([7, 8]), 5))
