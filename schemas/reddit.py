"""Bronze tables of the Reddit dumps and the ingest quarantine.

Field names follow the published Pushshift / Arctic Shift dumps; types are what the
typed tables hold after the ingest has coerced the drift between years.
"""

import pyarrow as pa

LINEAGE = [
    pa.field("source_file", pa.string(), nullable=False),
    pa.field("source_line", pa.int64(), nullable=False),
]

#: Month partition ("YYYY-MM", from created_utc).
MONTH = pa.field("month", pa.string(), nullable=False)

GALLERY_IMAGE = pa.struct(
    [
        pa.field("media_id", pa.string()),
        pa.field("url", pa.string()),
        pa.field("mime", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
    ]
)

#: Dump fields read for a submission (name -> Arrow type). `edited` is special-cased.
SUBMISSION_FIELDS: dict[str, pa.DataType] = {
    "id": pa.string(),
    "author": pa.string(),
    "author_fullname": pa.string(),
    "subreddit": pa.string(),
    "subreddit_id": pa.string(),
    "created_utc": pa.int64(),
    "title": pa.string(),
    "selftext": pa.string(),
    "url": pa.string(),
    "domain": pa.string(),
    "permalink": pa.string(),
    "is_self": pa.bool_(),
    "is_video": pa.bool_(),
    "is_gallery": pa.bool_(),
    "over_18": pa.bool_(),
    "score": pa.int64(),
    "num_comments": pa.int64(),
    "post_hint": pa.string(),
    "removed_by_category": pa.string(),
    "distinguished": pa.string(),
    "stickied": pa.bool_(),
    "link_flair_text": pa.string(),
    "author_flair_text": pa.string(),
    "thumbnail": pa.string(),
    "retrieved_on": pa.int64(),
}

COMMENT_FIELDS: dict[str, pa.DataType] = {
    "id": pa.string(),
    "link_id": pa.string(),
    "parent_id": pa.string(),
    "author": pa.string(),
    "author_fullname": pa.string(),
    "subreddit": pa.string(),
    "subreddit_id": pa.string(),
    "created_utc": pa.int64(),
    "body": pa.string(),
    "score": pa.int64(),
    "controversiality": pa.int64(),
    "gilded": pa.int64(),
    "distinguished": pa.string(),
    "stickied": pa.bool_(),
    "is_submitter": pa.bool_(),
    "author_flair_text": pa.string(),
    "retrieved_on": pa.int64(),
}

#: Subreddit metadata (Arctic Shift ``subreddits_YYYY-MM.zst``, the Pushshift subreddit
#: dump: Reddit's about.json ``data``); ``id`` is base36 (``2qh1i``), ``name`` ``t5_2qh1i``.
SUBREDDIT_FIELDS: dict[str, pa.DataType] = {
    "id": pa.string(),
    "name": pa.string(),
    "display_name": pa.string(),
    "title": pa.string(),
    "public_description": pa.string(),
    "description": pa.string(),
    "subscribers": pa.int64(),
    "created_utc": pa.int64(),
    "over18": pa.bool_(),
    "lang": pa.string(),
    "subreddit_type": pa.string(),
    "retrieved_on": pa.int64(),
}

#: Arctic Shift's ``_meta`` object (dumps from 2023 on): name inside ``_meta`` -> type.
#: Kept as ``meta_<name>`` columns, null where a dump has no ``_meta``.
META_FIELDS: dict[str, pa.DataType] = {
    "retrieved_2nd_on": pa.int64(),  # the second retrieval, ~36 h after the first
    "removal_type": pa.string(),  # deleted | removed | moderator | reddit | ...
    "was_deleted_later": pa.bool_(),
    "was_initially_deleted": pa.bool_(),
    "is_edited": pa.bool_(),
    "note": pa.string(),  # no_2nd_retrieval | initially_unavailable
}
META_COLUMNS = [pa.field(f"meta_{n}", t) for n, t in META_FIELDS.items()]

#: Fields without which a record is unusable: missing -> quarantine.
REQUIRED_FIELDS = ("id", "created_utc")

#: `edited` is `false` or an epoch float in the dumps (`true` in the oldest years).
#: Typed as epoch seconds; null = not edited, 0.0 = edited at an unknown time.
EDITED = pa.field("edited_utc", pa.float64())

#: Nested submission fields turned into typed columns by the ingest.
SUBMISSION_MEDIA = [
    pa.field("preview_url", pa.string()),
    pa.field("gallery", pa.list_(GALLERY_IMAGE)),
]


def _bronze(fields: dict[str, pa.DataType], extra: list[pa.Field]) -> pa.Schema:
    cols = [pa.field(n, t, nullable=n not in REQUIRED_FIELDS) for n, t in fields.items()]
    return pa.schema(cols + [EDITED, *META_COLUMNS, *extra, *LINEAGE, MONTH])


BRONZE_SUBMISSIONS = _bronze(SUBMISSION_FIELDS, SUBMISSION_MEDIA)
BRONZE_COMMENTS = _bronze(COMMENT_FIELDS, [])
#: One row per subreddit id: the newest version (`pipelines.subreddit_meta`).
BRONZE_SUBREDDITS = _bronze(SUBREDDIT_FIELDS, [])

QUARANTINE_RECORDS = pa.schema(
    [
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_line", pa.int64(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("error_kind", pa.string(), nullable=False),
        pa.field("error", pa.string(), nullable=False),
        pa.field("raw", pa.string()),
        pa.field("raw_bytes", pa.int64(), nullable=False),
    ]
)

#: One row per ingested dump file: the ledger behind records in = out + quarantined.
INGEST_FILES = pa.schema(
    [
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("compressed_bytes", pa.int64(), nullable=False),
        pa.field("decompressed_bytes", pa.int64(), nullable=False),
        pa.field("frames", pa.int64(), nullable=False),
        pa.field("lines", pa.int64(), nullable=False),
        pa.field("blank_lines", pa.int64(), nullable=False),
        pa.field("records", pa.int64(), nullable=False),
        pa.field("quarantined", pa.int64(), nullable=False),
        pa.field("blocklisted", pa.int64(), nullable=False),
        pa.field("utf8_repaired", pa.int64(), nullable=False),
        pa.field("truncated", pa.bool_(), nullable=False),
        pa.field("seconds", pa.float64(), nullable=False),
        #: Peak resident memory of the task's process (the largest of a split file's tasks).
        pa.field("peak_rss_bytes", pa.int64()),
    ]
)

KINDS = {
    "submissions": BRONZE_SUBMISSIONS,
    "comments": BRONZE_COMMENTS,
    "subreddits": BRONZE_SUBREDDITS,
}
FIELDS = {
    "submissions": SUBMISSION_FIELDS,
    "comments": COMMENT_FIELDS,
    "subreddits": SUBREDDIT_FIELDS,
}
