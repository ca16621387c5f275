"""Gold tables: the encoder's outputs and training metrics, the LLM-verbalised personas
and the ViPer-style visual preferences."""

import pyarrow as pa

from schemas.llm_call import CALL

USER_EMBEDDINGS = pa.schema(
    [
        pa.field("user_id", pa.int32(), nullable=False),
        pa.field("role", pa.string(), nullable=False),  # "train" or "inductive" (unseen)
        pa.field("model", pa.string(), nullable=False),  # encoder kind + run name
        pa.field("embedding", pa.list_(pa.float32()), nullable=False),
    ]
)

ATTENTION = pa.schema(
    [
        pa.field("user_id", pa.int32(), nullable=False),
        pa.field("subreddit_id", pa.int32(), nullable=False),
        #: subreddit -> user attention, mean over heads and layers; a user's weights sum to 1
        pa.field("attention", pa.float32(), nullable=False),
        pa.field("rank", pa.int32(), nullable=False),  # 1 = the user's most attended subreddit
        pa.field("posts", pa.int32(), nullable=False),
        pa.field("comments", pa.int32(), nullable=False),
    ]
)

TRAIN_METRICS = pa.schema(
    [
        pa.field("run", pa.string(), nullable=False),
        pa.field("epoch", pa.int32(), nullable=False),
        pa.field("workers", pa.int32(), nullable=False),
        pa.field("loss_link", pa.float64()),
        pa.field("loss_image", pa.float64()),
        pa.field("val_auc", pa.float64()),
        pa.field("posting_acc", pa.float64()),
        pa.field("recall_at_k", pa.float64()),
        pa.field("image_recall_at_k", pa.float64()),
        pa.field("seconds", pa.float64()),
        pa.field("seed_edges", pa.int64()),  # the epoch's seed edges, all workers
        pa.field("val_seconds", pa.float64()),  # of `seconds`: the validation pass
        pa.field("stopped_early", pa.bool_()),
    ]
)

_EVIDENCE = [
    pa.field("evidence_mode", pa.string(), nullable=False),  # "full" or "subreddits"
    pa.field("evidence_subreddits", pa.list_(pa.int32()), nullable=False),
    # each evidence subreddit's rarity-weighted attention (1 = an even share; what the
    # template verbaliser reads: generation.evidence._relative_attention)
    pa.field("evidence_weights", pa.list_(pa.float32())),
    pa.field("evidence_ids", pa.list_(pa.string()), nullable=False),  # snippet record ids
    pa.field("evidence_tokens", pa.int32(), nullable=False),
    pa.field("tokenizer", pa.string(), nullable=False),  # what counted the budget
    pa.field("evidence", pa.string(), nullable=False),  # the text the LLM saw
]

DEMOGRAPHICS = pa.struct(
    [
        pa.field("age", pa.string()),
        pa.field("gender", pa.string()),
        pa.field("region", pa.string()),
        pa.field("occupation", pa.string()),
    ]
)

PERSONAS = pa.schema(
    [
        pa.field("user_id", pa.int32(), nullable=False),
        pa.field("source", pa.string(), nullable=False),  # "llm", "template" or "override"
        pa.field("demographics", DEMOGRAPHICS),
        pa.field("interests", pa.list_(pa.string())),
        pa.field("affective_traits", pa.list_(pa.string())),
        pa.field("visual_interests", pa.list_(pa.string())),
        pa.field("text", pa.string()),  # free text, first person
        *_EVIDENCE,
        *CALL,
    ]
)

VISUAL_PREFERENCES = pa.schema(
    [
        pa.field("user_id", pa.int32(), nullable=False),
        pa.field("likes", pa.list_(pa.string())),
        pa.field("dislikes", pa.list_(pa.string())),
        *_EVIDENCE,
        *CALL,
    ]
)
