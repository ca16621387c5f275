"""The benchmark's tables: users, held-out references, base prompts, persona-conditioned
rewrites, images, scores and the scorers' agreement set.

Every LLM-made row keeps how it was made (`schemas.llm_call.CALL`) and ends ``done`` or
``failed`` with a reason.
"""

import pyarrow as pa

from schemas.llm_call import CALL

BENCH_USERS = pa.schema(
    [
        pa.field("user_id", pa.int32(), nullable=False),
        pa.field("stratum", pa.string(), nullable=False),  # how the user was selected
        pa.field("images", pa.int32(), nullable=False),  # posted images on record
        #: held-out reference images ("post_id:position"), newest first; never evidence
        pa.field("references", pa.list_(pa.string()), nullable=False),
    ]
)

#: the benchmark split: every image of every held-out reference post (gallery siblings
#: included). Written right after `graph`; every stage that learns or conditions reads
#: only what is not here (`contract.stage_io.without_held_out`).
BENCH_REFERENCES = pa.schema(
    [
        pa.field("user_id", pa.int32(), nullable=False),
        pa.field("post_id", pa.string(), nullable=False),
        pa.field("position", pa.int32(), nullable=False),
        pa.field("image_url", pa.string(), nullable=False),
        pa.field("created_utc", pa.int64(), nullable=False),
        #: the subreddit the post is in (its edge loses the post in the history view)
        pa.field("subreddit_id", pa.int32()),
    ]
)

BENCH_PROMPTS = pa.schema(
    [
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("user_id", pa.int32(), nullable=False),
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),  # "file" or "caption"
        pa.field("post_id", pa.string()),  # the held-out image a caption came from
    ]
)

REWRITES = pa.schema(
    [
        pa.field("rewrite_id", pa.string(), nullable=False),  # user, prompt, method, llm
        pa.field("user_id", pa.int32(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
        #: "none", "zero_shot", "k_shot", "viper" or "history"
        pa.field("method", pa.string(), nullable=False),
        pa.field("base_prompt", pa.string(), nullable=False),
        pa.field("prompt", pa.string()),  # the rewritten prompt
        pa.field("negative_prompt", pa.string()),
        pa.field("examples", pa.list_(pa.string())),  # k-shot / retrieved history shown
        *CALL,
    ]
)

BENCH_IMAGES = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),  # record + model + sampling hash
        pa.field("user_id", pa.int32(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
        #: "base" (the unrewritten prompt), a rewrite method, or "pigeon" (history images)
        pa.field("method", pa.string(), nullable=False),
        pa.field("llm", pa.string(), nullable=False),  # "-" when no LLM was involved
        pa.field("seed_index", pa.int32(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("negative_prompt", pa.string()),
        pa.field("model", pa.string(), nullable=False),  # pipeline path or id
        pa.field("smoke_model", pa.bool_(), nullable=False),  # the tiny random pipeline
        pa.field("status", pa.string(), nullable=False),
        pa.field("reason", pa.string()),
        pa.field("path", pa.string()),  # relative to the lake root: media/<2 hex>/<sha256>.png
        pa.field("sha256", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("seconds", pa.float64(), nullable=False),
    ]
)

BENCH_SCORES = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("user_id", pa.int32(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("method", pa.string(), nullable=False),
        pa.field("method_llm", pa.string(), nullable=False),  # the rewriter ("-": none)
        pa.field("seed_index", pa.int32(), nullable=False),
        pa.field("encoder", pa.string(), nullable=False),  # image-feature space of the scores
        pa.field("embedding", pa.list_(pa.float32()), nullable=False),  # the generated image's
        pa.field("references", pa.int32(), nullable=False),  # reference images compared with
        pa.field("clip_ref", pa.float64()),  # CLIPScore x100 vs the user's references (mean)
        pa.field("clip_prompt", pa.float64()),  # CLIPScore x100 vs the prompt (CLIP only)
        #: the learned preference judge: P(the user would post it) in [0, 1], from their
        #: history images only (null: the user has no history image)
        pa.field("preference", pa.float64()),
        pa.field("preference_history", pa.int32()),  # history images it compared with
        #: Pigeon's history metrics (`evaluation.history_metrics`): cosine x100 to the mean
        #: of the user's history images, in the lake's space and the DINO-style space
        #: (EfficientNet-Lite0), and the DINO-style score vs the references; null: none
        pa.field("clip_history", pa.float64()),
        pa.field("dino_ref", pa.float64()),
        pa.field("dino_history", pa.float64()),
        pa.field("history_images", pa.int32()),  # history images compared with (lake space)
        pa.field("judge_score", pa.float64()),  # 0-10
        pa.field("judge_reason", pa.string()),
        #: the LLM judge's call: llm = the judge model ("template:template": no LLM;
        #: "none" with status "skipped": judge.backend none)
        *CALL,
    ]
)

#: the agreement set: for each benchmark user, other benchmark users' held-out reference
#: images (real posts, in no judge's training data), scored by every scorer exactly as
#: generated images are. No ground truth here: only the report joins the planted tastes.
BENCH_AGREEMENT = pa.schema(
    [
        pa.field("user_id", pa.int32(), nullable=False),  # the user the image is judged for
        pa.field("post_id", pa.string(), nullable=False),  # another user's reference post
        pa.field("position", pa.int32(), nullable=False),
        pa.field("encoder", pa.string(), nullable=False),
        pa.field("references", pa.int32(), nullable=False),
        pa.field("clip_ref", pa.float64()),
        pa.field("preference", pa.float64()),
        pa.field("preference_history", pa.int32()),
        pa.field("judge_score", pa.float64()),
        pa.field("judge_reason", pa.string()),
        *CALL,
    ]
)
