"""Evidence: attention order, the token budget (real tokenizer), subreddit-only mode."""

from __future__ import annotations

import pytest

from generation.evidence import build_evidence
from llm.tokens import PACKAGED, counter
from storage.lake import Lake
from tests.generation.world import SUB_COMMUNITY
from tests.jobs.test_llm_stages import write_world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    community = write_world(root)
    lake = Lake(root)
    tables = {n: lake.read(n) for n in ("gold/attention", "silver/snippets", "silver/subreddits")}
    return community, tables


def _build(tables, users, **kw):
    return build_evidence(
        users,
        tables["gold/attention"],
        tables["silver/snippets"],
        tables["silver/subreddits"],
        counter(PACKAGED),
        **kw,
    )


def test_subreddits_come_in_attention_order_with_their_best_snippets(world):
    community, tables = world
    (ev,) = _build(tables, [0], budget=4096, snippets_per_subreddit=2)
    own = [s for s, c in SUB_COMMUNITY.items() if c == community[0]]
    assert ev.subreddits[:2] == own
    assert ev.subreddits == [*own, 4, 5]
    assert ev.snippet_ids[:2] == [f"c0_{own[0]}_1", f"c0_{own[0]}_2"]
    assert len(ev.snippet_ids) == 2 * 4
    assert ev.text.index("r/" + ev.subreddit_names[0]) < ev.text.index("r/" + ev.subreddit_names[1])
    assert ev.tokens == counter(PACKAGED).count([ev.text])[0]


@pytest.mark.parametrize("budget", [20, 60, 150])
def test_no_user_exceeds_the_budget_and_more_budget_means_more_evidence(world, budget):
    _, tables = world
    users = list(range(12))
    small = _build(tables, users, budget=budget)
    big = _build(tables, users, budget=budget * 4)
    for s, b in zip(small, big, strict=True):
        assert 0 < s.tokens <= budget
        assert b.tokens <= budget * 4
        assert len(b.snippet_ids) >= len(s.snippet_ids)
        assert b.text.startswith(s.text.split("\n")[0])


def test_subreddit_only_evidence_has_no_snippets(world):
    _, tables = world
    (ev,) = _build(tables, [3], mode="subreddits")
    assert ev.snippet_ids == [] and ev.snippets == []
    assert ev.text.count("## r/") == 4
    assert "- [comment]" not in ev.text


def test_a_user_without_attention_rows_gets_empty_evidence(world):
    _, tables = world
    (ev,) = _build(tables, [999])
    assert ev.text == "" and ev.tokens == 0 and ev.subreddits == []
