"""Stages `personas` and `preferences` (Ray): evidence (history only) under a token budget,
verbalised by the configured LLM(s) into gold/personas, and ViPer-style liked/disliked
visual attributes into gold/visual_preferences.

python -m jobs.personas personas|preferences -c conf/cluster.yaml [key=value ...]
"""

from generation.persona_stages import personas, preferences
from jobs.runner import Stage

INPUTS = ("gold/attention", "silver/subreddits", "silver/users", "bench/users")

PERSONAS = Stage(
    name="personas",
    run=personas,
    engine="ray",
    inputs=INPUTS,
    history=("silver/snippets",),
    files=("personas.overrides", "ingest.blocklist"),  # overrides of deleted users skipped
    outputs=("gold/personas",),
    config=("personas", "llm"),
    summary="evidence under a token budget -> LLM-verbalised personas (gold/personas)",
)

PREFERENCES = Stage(
    name="preferences",
    run=preferences,
    engine="ray",
    inputs=INPUTS,
    history=("silver/snippets",),
    outputs=("gold/visual_preferences",),
    config=("personas", "llm"),
    summary="liked/disliked visual attributes per user (ViPer baseline)",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(PERSONAS, PREFERENCES)
