"""Stage `features` (Ray Data): subreddit text features (sentence-transformers) and the
users' visual profiles (history only) -> silver/node_features. A subreddit's text starts
with its title and public description from bronze/subreddits when
``features.subreddit_metadata`` is on and the dumps had them."""

from __future__ import annotations

from contract.stage import Stage
from contract.stage_io import StageIO
from pipelines.config import FeaturesConfig

#: what the subreddit documents need of silver/snippets, and how many rows are read at once
SNIPPET_COLUMNS = ["user_id", "subreddit_id", "text", "score"]
SNIPPET_BATCH_ROWS = 262_144


def features(io: StageIO) -> None:
    """silver/subreddits + history snippets of training edges and history image
    embeddings -> silver/node_features (subreddit text vectors, user visual profiles);
    held-out reference posts and held-out edges never count."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipelines.text_features import (
        best_snippets,
        default_text_model,
        subreddit_documents,
        text_features,
        training_snippets,
        visual_profiles,
    )

    c: FeaturesConfig = io.config.features
    # a subreddit's text comes from its training edges only: held-out edges' and unseen
    # users' comments must not reach the encoder's inputs
    edges = io.history("silver/edges", ["user_id", "subreddit_id", "split"])
    train = edges.filter(pc.equal(edges["split"], "train")).select(["user_id", "subreddit_id"])
    del edges  # only the training edges' keys stay for the snippets' semi join
    # the snippets grow with the users: streamed, only each subreddit's best stay
    pieces = io.history_batches("silver/snippets", SNIPPET_COLUMNS, SNIPPET_BATCH_ROWS)
    snippets = best_snippets(training_snippets(pieces, train), c.texts_per_subreddit)
    subreddits = io.read("silver/subreddits")
    about = subreddit_metadata(io, c, subreddits["subreddit"].to_pylist())
    ids, docs, counts = subreddit_documents(
        subreddits, snippets, c.texts_per_subreddit, metadata=about
    )
    with io.console.status("features: starting Ray"):
        io.ray()
    model = c.text_model or default_text_model()

    def embed(ids, docs, counts) -> pa.Table:
        return text_features(ids, docs, counts, model, actors=c.actors, num_gpus=c.num_gpus)

    text = embed(ids, docs, counts)
    tables = [text]
    if about:  # the described subreddits' vectors without it too: the ablation's row
        plain = subreddit_documents(subreddits, snippets, c.texts_per_subreddit, metadata={})
        described = {
            i
            for i, name in zip(
                subreddits["subreddit_id"].to_pylist(),
                subreddits["subreddit"].to_pylist(),
                strict=True,
            )
            if name.lower() in about
        }
        keep = [k for k, i in enumerate(plain[0]) if i in described]
        bare = embed(*([part[k] for k in keep] for part in plain))
        tables.append(
            bare.set_column(
                bare.schema.get_field_index("feature_set"),
                bare.schema.field("feature_set"),
                pa.array(["text_no_metadata"] * bare.num_rows, pa.string()),
            )
        )
    visual = visual_profiles(io.history("silver/image_embeddings"))
    io.write("silver/node_features", pa.concat_tables([*tables, visual]))
    bare_rows = sum(t.num_rows for t in tables[1:])
    io.console.print(
        f"  node features: {text.num_rows:,} subreddits (text; {bare_rows:,} also without "
        f"title/description), {visual.num_rows:,} users (visual)"
    )


def subreddit_metadata(io: StageIO, c: FeaturesConfig, names: list[str]) -> dict[str, str]:
    """Lower-cased name -> title and public description of the subreddits `names` that
    bronze/subreddits describes; {} when switched off."""
    from pipelines.subreddit_meta import TEXT_COLUMNS, metadata_texts

    if not c.subreddit_metadata:
        return {}
    about = metadata_texts(io.read("bronze/subreddits", TEXT_COLUMNS), names)
    io.console.print(
        f"  node features: {len(about):,} of {len(names):,} subreddits with title/description"
    )
    return about


STAGE = Stage(
    name="features",
    run=features,
    engine="ray",
    inputs=("silver/subreddits", "bronze/subreddits"),
    history=("silver/edges", "silver/snippets", "silver/image_embeddings"),
    outputs=("silver/node_features",),
    config=("features",),
    summary="subreddit text features (sentence-transformers) and user visual profiles",
)
