"""The template's persona reads the rarity-weighted attention: busy subreddits the
attention passes over are no interest, and what the user says there is chatter."""

from __future__ import annotations

import json

from llm.template_backend import persona_json, preferences_json


def _inputs(weights: list[float] | None) -> dict:
    return {
        "subreddits": ["AskReddit", "Knitting", "YarnPorn"],
        "subreddit_weights": weights,
        "snippets": [
            "honestly the weather tonight, agree with everyone here",
            "merino yarn cables cables, agree",
            "merino skein dyeing",
        ],
        "snippet_ranks": [1, 2, 3],
    }


def test_busy_subreddits_below_an_even_share_are_no_interest_and_their_words_are_chatter():
    persona = json.loads(persona_json(_inputs([0.2, 1.6, 1.2])))
    assert persona["interests"] == ["knitting", "yarn porn"]
    assert "AskReddit" not in persona["text"]
    assert persona["visual_interests"][:2] == ["cables", "merino"]
    assert not {"agree", "weather", "honestly"} & set(persona["visual_interests"])
    likes = json.loads(preferences_json(_inputs([0.2, 1.6, 1.2])))["likes"]
    assert "agree" not in likes and "merino" in likes


def test_without_weights_every_subreddit_counts_and_the_top_one_always_stays():
    assert len(json.loads(persona_json(_inputs(None)))["interests"]) == 3
    persona = json.loads(persona_json(_inputs([0.5, 0.5, 0.5])))
    assert persona["interests"] == ["ask reddit"]


def test_the_roleplay_rewrite_carries_the_personas_visual_interests_and_interests():
    from llm.template_backend import rewrite_text

    persona = {"visual_interests": ["merino", "cables"], "interests": ["knitting", "merino"]}
    zero = rewrite_text({"prompt": "a cat.", "method": "zero_shot", "persona": persona})
    assert zero == "a cat, merino, cables, knitting"
    shot = {"prompt": "a cat", "method": "k_shot@5", "persona": persona}
    out = rewrite_text(shot | {"examples": ["lace shawl", "lace cardigan", "merino"]})
    # the examples' words lead (they survive a renderer's token limit), then the persona's
    assert out == "a cat, lace, cardigan, merino, cables, knitting"
    none = rewrite_text({"prompt": "a cat", "method": "none", "persona": persona})
    assert "merino" not in none


def test_the_rewrite_keeps_the_personas_first_items_whole():
    from llm.template_backend import REWRITE_ITEMS, rewrite_text

    visual = [f"word{i}" for i in range(5)] + ["cool blue tones"]
    persona = {"visual_interests": visual, "interests": ["knitting", "yarn", "wool"]}
    zero = rewrite_text({"prompt": "a cat", "method": "zero_shot", "persona": persona})
    assert zero.split(", ")[1:] == visual[:REWRITE_ITEMS]  # the interests come after: cut
    shot = {"prompt": "a cat", "method": "k_shot", "persona": persona}
    out = rewrite_text(shot | {"examples": ["lace shawl", "lace cardigan"]})
    # the examples' words come before the persona's, which are kept whole
    assert out.split(", ")[1:] == ["lace", "cardigan", "shawl", *visual]
