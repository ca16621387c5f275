"""Gold tables (encoder outputs) and the encoder's training-metrics table."""

import pyarrow as pa

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
        pa.field("stopped_early", pa.bool_()),
    ]
)
