"""The human A/B study's votes (`zipp study export --lake`): one row per blind judgement,
the methods behind each side unblinded, the rater named by the study's random id only."""

import pyarrow as pa

#: what a rater may answer for a pair; "cant_tell" is a tie
VOTES = ("left", "right", "cant_tell")

STUDY_VOTES = pa.schema(
    [
        pa.field("study", pa.string(), nullable=False),
        pa.field("pair", pa.string(), nullable=False),  # the pair's random id
        pa.field("prompt", pa.string(), nullable=False),  # the base prompt both sides share
        pa.field("method_left", pa.string(), nullable=False),
        pa.field("method_right", pa.string(), nullable=False),
        pa.field("vote", pa.string(), nullable=False),  # one of VOTES
        pa.field("winner", pa.string()),  # the method voted for; null for cant_tell
        pa.field("rater", pa.string(), nullable=False),  # random id, never the invite code
        pa.field("time", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
