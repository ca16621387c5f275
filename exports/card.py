"""The dataset card of an export (``README.md`` in the export folder, HF dataset-card
style): its fields, the pseudonymisation, the intended use and the source's terms."""

from __future__ import annotations

import json

import pyarrow as pa

from exports import neighbours, topics

CARD = "README.md"

#: one line per exported column, for the dataset card
FIELD_DOCS = {
    "user": "pseudonym of the Reddit account: u_ + 16 hex of HMAC-SHA256(key, user name)",
    "author": "the Reddit user name (exports made with --include-usernames only)",
    "user_id": "the lake's user id (the user name's rank: identifying)",
    "source": "how the persona was made: llm, template or override",
    "demographics": "estimated age, gender, region and occupation (null when not stated)",
    "interests": "interests, as short phrases",
    "affective_traits": "affective traits, as short phrases",
    "visual_interests": "visual interests, as short phrases",
    "text": "the persona in the first person, free text",
    "evidence_mode": "what evidence the persona was verbalised from: full or subreddits",
    "evidence_subreddits": "subreddit ids of the evidence, ranked by attention",
    "evidence_weights": "each evidence subreddit's rarity-weighted attention (1: an even share)",
    "evidence_ids": "Reddit ids of the quoted snippets",
    "evidence_tokens": "tokens of evidence the LLM saw (within the token budget)",
    "tokenizer": "what counted the evidence budget",
    "evidence": "the evidence text the LLM saw (quoted Reddit comments)",
    "llm": "the model that made the row, backend:model ('-': no LLM involved)",
    "template": "made by the deterministic template backend, not a language model",
    "status": "done or failed",
    "reason": "why the row failed",
    "raw": "the model's last reply when it failed validation",
    "prompt_version": "version of the prompt template the model was asked with",
    "prompt_tokens": "prompt tokens of the model call",
    "completion_tokens": "completion tokens of the model call",
    "attempts": "model calls made, retries included",
    "seconds": "seconds the row took to make",
    "request_id": "hash of the exact request",
    "image_id": "the image's id (keyed hash in pseudonymised exports)",
    "prompt_id": "hash of the base prompt",
    "method": "base (unrewritten prompt), a rewrite method, or pigeon (history images)",
    "seed_index": "which of the prompt's seeds made the image",
    "seed": "the diffusion seed (derived from the user id)",
    "prompt": "the prompt the image was rendered from",
    "negative_prompt": "the negative prompt, if any",
    "model": "the text-to-image pipeline (path or id)",
    "smoke_model": "made by the tiny, randomly initialised smoke pipeline (noise)",
    "path": "the image file, relative to the lake root",
    "sha256": "SHA-256 of the PNG",
    "width": "image width in pixels",
    "height": "image height in pixels",
    "persona": "the persona that goes with the image (same user; same LLM when one was used)",
    "persona_llm": "the LLM that made that persona (null: none)",
    "image": "the generated image (PNG)",
}


def _size_category(n: int) -> str:
    for bound, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < bound:
            return name
    return "100K<n<1M" if n < 1_000_000 else "1M<n<10M" if n < 10_000_000 else "n>10M"


def _type(t: pa.DataType) -> str:
    if pa.types.is_struct(t):
        return "struct<" + ", ".join(t.field(i).name for i in range(t.num_fields)) + ">"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{_type(t.value_type)}>"
    return str(t).replace("large_", "")


def dataset_card(
    kind: str,
    fmt: str,
    table: pa.Table,
    include_usernames: bool,
    key_env: str,
    min_community_users: int,
) -> str:
    """The export's README.md: HF dataset-card front matter, then its fields (one line
    each, from the table's schema), the pseudonymisation, intended use and terms."""
    title = {"personas": "ZIPP personas", "bench": "ZIPBench images"}[kind]
    q = json.dumps
    front = [
        "---",
        f"pretty_name: {q(title + (' (with user names)' if include_usernames else ''))}",
        "language:",
        "- en",
        "license: other",
        f"license_name: {q('reddit-user-agreement')}",
        "tags:",
        *(f"- {t}" for t in ("reddit", "personas", "personalized-generation", "text-to-image")),
        "size_categories:",
        f"- {q(_size_category(table.num_rows))}",
        "source_datasets:",
        f"- {q('Reddit submissions and comments via Pushshift / Arctic Shift dumps')}",
    ]
    if fmt in ("parquet", "jsonl"):
        front += [
            "configs:",
            "- config_name: default",
            f"  data_files: {q(f'{kind}.{fmt}')}",
        ]
    front.append("---")
    fields = [
        f"- `{f.name}` ({_type(f.type)}): {FIELD_DOCS.get(f.name, f.name)}" for f in table.schema
    ]
    if fmt == "hf" and kind == "bench":
        fields.append(f"- `image` (datasets.Image): {FIELD_DOCS['image']}")
    if include_usernames:
        privacy = [
            "**Not pseudonymised**: this export was made with `--include-usernames` and holds "
            "Reddit user names (`author`), the lake's user ids, the quoted evidence and the "
            "names of every community. Keep it private; do not publish it.",
        ]
    else:
        privacy = [
            f"- Users: `user` = `u_` + the first 16 hex characters of HMAC-SHA256 over the "
            f"Reddit user name, keyed with a secret read from the environment (`{key_env}`); "
            "the key is never stored or written, so pseudonyms cannot be reversed or "
            "recomputed without it.",
            "- Dropped: the user names, the lake's `user_id` (the name's rank: rebuildable "
            "from the public dumps), the quoted comments and their Reddit ids (`evidence`, "
            "`evidence_ids`, `raw`), the ranked subreddit list (`evidence_subreddits`), "
            "`request_id` (a hash of the evidence) and `seed` (derived from the user id); "
            "`image_id` is replaced by its keyed hash.",
            f"- Rare communities: every subreddit with fewer than {min_community_users} users "
            "(`export.min_community_users`) is replaced, in every text and list field, by a "
            'label that says what it is about without naming it: "a community near r/X", X '
            f"being the subreddit with at least {min_community_users} users most "
            "over-represented among its users (lift, shared users over what independence "
            f"gives, at least {neighbours.MIN_LIFT:g}, with at least {neighbours.MIN_SHARED} "
            "users shared and unlikely by chance: one-sided Fisher test, family-wise "
            f"{neighbours.MAX_P:g}; subreddits whose users spread over the rare communities as "
            'independence predicts, generic hubs, are never X); else "a small community about '
            '..." in up to three words its users write over-proportionately (each written by '
            f"at least {topics.MIN_USERS} of its users and used in at least "
            f"{topics.MIN_SUBREDDITS} rare communities; never a word of its name, a rare "
            'community\'s name or a user name); else "a small community". Names are matched '
            "case-insensitively, with or without `r/`, and in their readable form.",
        ]
    body = [
        f"# {title}",
        "",
        f"Exported by ZIPP (`zipp export {kind} --format {fmt}`): {table.num_rows:,} rows.",
        "",
        "## Fields",
        "",
        *fields,
        "",
        "## Pseudonymisation",
        "",
        *privacy,
        "",
        "## Intended use",
        "",
        "Research on personalised text-to-image generation and its evaluation (ZIPBench). "
        "Not for profiling, targeting or re-identifying people, nor for linking the rows back "
        "to Reddit accounts.",
        "",
        "## Source and terms",
        "",
        "Derived from Reddit content (submissions and comments) distributed as the "
        "Pushshift / Arctic Shift dumps. Reddit's User Agreement and its Data API terms apply "
        "to that content and to anything derived from it. Deletion requests are honoured "
        "through the pipeline's blocklist (`ingest.blocklist`): a listed user is removed from "
        "every table of the lake at the next `zipp run` and from every export made after it; "
        "re-export and replace earlier copies.",
        "",
    ]
    return "\n".join(front + [""] + body)
