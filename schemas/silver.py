"""Silver tables: the user–subreddit graph, evidence snippets and users' posted images."""

import pyarrow as pa

USERS = pa.schema(
    [
        pa.field("user_id", pa.int32(), nullable=False),
        pa.field("author", pa.string(), nullable=False),
        pa.field("posts", pa.int64(), nullable=False),
        pa.field("comments", pa.int64(), nullable=False),
        pa.field("subreddits", pa.int64(), nullable=False),
        pa.field("first_utc", pa.int64(), nullable=False),
        pa.field("last_utc", pa.int64(), nullable=False),
        #: "train" or "inductive" (held out entirely, never seen in training)
        pa.field("role", pa.string(), nullable=False),
    ]
)

SUBREDDITS = pa.schema(
    [
        pa.field("subreddit_id", pa.int32(), nullable=False),
        pa.field("subreddit", pa.string(), nullable=False),
        pa.field("users", pa.int64(), nullable=False),
        pa.field("posts", pa.int64(), nullable=False),
        pa.field("comments", pa.int64(), nullable=False),
        pa.field("first_utc", pa.int64(), nullable=False),
        pa.field("last_utc", pa.int64(), nullable=False),
    ]
)

EDGES = pa.schema(
    [
        pa.field("user_id", pa.int32(), nullable=False),
        pa.field("subreddit_id", pa.int32(), nullable=False),
        pa.field("posts", pa.int32(), nullable=False),
        pa.field("comments", pa.int32(), nullable=False),
        pa.field("score_sum", pa.int64(), nullable=False),
        pa.field("first_utc", pa.int64(), nullable=False),
        pa.field("last_utc", pa.int64(), nullable=False),
        #: "train", "val", "test" (held-out edges) or "inductive" (edges of held-out users)
        pa.field("split", pa.string(), nullable=False),
    ]
)

SNIPPETS = pa.schema(
    [
        pa.field("user_id", pa.int32(), nullable=False),
        pa.field("subreddit_id", pa.int32(), nullable=False),
        pa.field("rank", pa.int32(), nullable=False),
        pa.field("source", pa.string(), nullable=False),  # "comment" or "title"
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("score", pa.int64()),
        pa.field("created_utc", pa.int64(), nullable=False),
        #: the post a title is of, or a comment is under (history filters hold it out)
        pa.field("post_id", pa.string()),
    ]
)

USER_IMAGES = pa.schema(
    [
        pa.field("user_id", pa.int32(), nullable=False),
        pa.field("post_id", pa.string(), nullable=False),
        pa.field("position", pa.int32(), nullable=False),  # index inside a gallery, else 0
        pa.field("media_id", pa.string()),
        pa.field("subreddit", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("created_utc", pa.int64(), nullable=False),
        pa.field("image_url", pa.string(), nullable=False),
        pa.field("origin", pa.string(), nullable=False),  # "i.redd.it", "gallery", "preview"
    ]
)

IMAGE_EMBEDDINGS = pa.schema(
    [
        pa.field("user_id", pa.int32(), nullable=False),
        pa.field("post_id", pa.string(), nullable=False),
        pa.field("position", pa.int32(), nullable=False),
        pa.field("image_url", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),  # "ok" or "failed"
        pa.field("reason", pa.string()),  # why it failed (FetchError reason: message)
        pa.field("sha256", pa.string()),
        pa.field("bytes", pa.int64()),
        pa.field("encoder", pa.string(), nullable=False),
        pa.field("embedding", pa.list_(pa.float32())),
    ]
)

NODE_FEATURES = pa.schema(
    [
        pa.field("node_type", pa.string(), nullable=False),  # "user" or "subreddit"
        pa.field("node_id", pa.int32(), nullable=False),
        pa.field("feature_set", pa.string(), nullable=False),  # "visual" or "text"
        pa.field("model", pa.string(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),  # images / texts behind the vector
        pa.field("vector", pa.list_(pa.float32()), nullable=False),
    ]
)
