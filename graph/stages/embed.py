"""Stage `embed` (local): every user's embedding (unseen ones included) and per-edge
attention from the trained encoder -> gold/user_embeddings, gold/attention."""

from __future__ import annotations

from contract.stage import Stage
from contract.stage_io import StageIO
from graph.artifacts import MODEL_FILE
from graph.train import HISTORY_TABLES, INPUT_TABLES


def embed(io: StageIO) -> None:
    """models/encoder + silver -> gold/user_embeddings (every user, unseen ones included)
    and gold/attention (every user–subreddit edge, ranked per user)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from graph.artifacts import load_model
    from graph.infer import attention_table, embed_all
    from graph.train import read_inputs

    encoder, cfg, run = load_model(io.path("models/encoder") / MODEL_FILE)
    inputs = read_inputs(io.access, cfg.seed, message="all", text=cfg.text_features)
    g = inputs.graph
    with io.console.status(f"embed: {g.num_users:,} users, {g.num_edges:,} edges"):
        h_user, _, att = embed_all(encoder, g, io.config.encoder.inference_chunk, attention=True)
    users = io.read("silver/users").sort_by("user_id")
    model = f"{cfg.conv}:{run}"
    io.write(
        "gold/user_embeddings",
        pa.table(
            {
                "user_id": users["user_id"],
                "role": users["role"],
                "model": [model] * users.num_rows,
                "embedding": pa.array(list(h_user.numpy()), pa.list_(pa.float32())),
            }
        ),
    )
    edges = io.history("silver/edges", ["user_id", "subreddit_id", "posts", "comments"])
    io.write("gold/attention", attention_table(g, att, edges))
    inductive = int(pc.sum(pc.equal(users["role"], "inductive")).as_py() or 0)
    io.details.update(run=run, users=users.num_rows, inductive_users=inductive, edges=g.num_edges)
    io.console.print(
        f"  embeddings: {users.num_rows:,} users ({inductive:,} unseen in training); "
        f"attention: {g.num_edges:,} edges"
    )


STAGE = Stage(
    name="embed",
    run=embed,
    engine="local",
    inputs=("models/encoder", *INPUT_TABLES),
    history=HISTORY_TABLES,
    outputs=("gold/user_embeddings", "gold/attention"),
    config=("encoder.inference_chunk",),
    summary="embeddings of every user (unseen included) and per-edge attention",
)
