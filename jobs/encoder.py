"""Stages `train` (Ray Train) and `embed` (local): the persona-mining encoder.

python -m jobs.encoder train|embed -c conf/cluster.yaml [key=value ...]
"""

from __future__ import annotations

import hashlib
import shutil

from rich.table import Table

from jobs.runner import Stage, StageContext, input_fingerprint

TRAIN_INPUTS = (
    "silver/users",
    "silver/subreddits",
    "silver/edges",
    "silver/node_features",
    "silver/image_embeddings",
)
MODEL_FILE = "model.pt"


def run_name(ctx: StageContext) -> str:
    """Checkpoint folder name: encoder kind + hash of the config section and inputs, so a
    rerun with the same inputs resumes and anything else starts afresh."""
    h = hashlib.sha1(ctx.config.section_hash("encoder").encode())
    for name in TRAIN_INPUTS:
        h.update(input_fingerprint(name, ctx.config, ctx.lake).encode())
    return f"{ctx.config.encoder.conv}-{h.hexdigest()[:12]}"


def train(ctx: StageContext) -> None:
    """silver -> models/encoder (metrics table, model.pt, metrics.png); checkpoints in
    models/checkpoints/<run>."""
    import numpy as np
    import pyarrow as pa

    from graph.artifacts import plot_metrics, save_model
    from graph.train import build_objective, evaluate, fit, read_inputs
    from pipelines.ray_session import ray_session
    from schemas.gold import TRAIN_METRICS

    cfg = ctx.config.encoder.model_dump()
    lake = ctx.lake
    name = run_name(ctx)
    storage = lake.path("models/checkpoints")
    if ctx.force:
        shutil.rmtree(storage / name, ignore_errors=True)
    with ctx.console.status("train: starting Ray"):
        ray_session(ctx.config.ray.address, ctx.config.ray.num_cpus)
    ctx.console.print(
        f"  training {cfg['conv']} ({cfg['num_workers']} worker(s), run {name}); "
        f"checkpoints in {storage / name}"
    )
    state = fit(cfg, str(lake.root), str(storage), name)
    history = state["history"]
    if state["resumed_at"]:
        ctx.console.print(f"  resumed from the checkpoint of epoch {state['resumed_at'][-1]}")
    rows = [{k: h.get(k) for k in TRAIN_METRICS.names} | {"run": name} for h in history]
    metrics = pa.Table.from_pylist(rows, schema=TRAIN_METRICS)
    lake.write_table("models/encoder", metrics)
    out = lake.path("models/encoder")
    plot_metrics(metrics, out / "metrics.png", f"{cfg['conv']} encoder — {name}")
    inputs = read_inputs(str(lake.root), cfg["seed"], message="observed")
    model = build_objective(cfg, inputs)
    model.load_state_dict(state["best_model"])
    dims = {
        "user_dim": inputs.graph.user_x.shape[1],
        "sub_dim": inputs.graph.sub_x.shape[1],
        "image_dim": int(inputs.images.shape[1]) if len(inputs.images) else 0,
    }
    save_model(out / MODEL_FILE, cfg, model.encoder.state_dict(), dims, name)
    test = evaluate(model, inputs, cfg, "test")
    unseen = evaluate(model, inputs, cfg, "inductive")
    _print_history(ctx, history, test, unseen)
    ctx.details.update(
        run=name,
        epochs=len(history),
        best_epoch=state.get("best_epoch"),
        resumed_at=state["resumed_at"],
        stopped_early=bool(history and history[-1].get("stopped_early")),
        test={k: _num(v) for k, v in test.items()},
        inductive={k: _num(v) for k, v in unseen.items()},
        chance_posting_acc=1 / cfg["posting_candidates"],
        mean_epoch_seconds=float(np.mean([h["seconds"] for h in history])),
    )


def _num(v: float) -> float | None:
    return None if v != v else round(float(v), 4)


def _print_history(ctx: StageContext, history: list, test: dict, unseen: dict) -> None:
    t = Table(title="encoder training (validation per epoch)")
    cols = (
        "epoch",
        "loss_link",
        "loss_image",
        "val_auc",
        "posting_acc",
        "recall_at_k",
        "image_recall_at_k",
        "seconds",
    )
    for c in cols:
        t.add_column(c, justify="right")
    for h in history:
        t.add_row(*(f"{h.get(c, float('nan')):.3f}" if c != "epoch" else str(h[c]) for c in cols))
    ctx.console.print(t)
    fmt = ", ".join
    ctx.console.print("  test:      " + fmt(f"{k}={v:.3f}" for k, v in test.items()))
    ctx.console.print("  inductive: " + fmt(f"{k}={v:.3f}" for k, v in unseen.items()))


def embed(ctx: StageContext) -> None:
    """models/encoder + silver -> gold/user_embeddings (every user, unseen ones included)
    and gold/attention (every user–subreddit edge, ranked per user)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from graph.artifacts import load_model
    from graph.infer import embed_all
    from graph.train import read_inputs

    lake = ctx.lake
    encoder, cfg, run = load_model(lake.path("models/encoder") / MODEL_FILE)
    inputs = read_inputs(str(lake.root), cfg["seed"], message="all")
    g = inputs.graph
    with ctx.console.status(f"embed: {g.num_users:,} users, {g.num_edges:,} edges"):
        h_user, _, att = embed_all(encoder, g, ctx.config.encoder.inference_chunk, attention=True)
    users = lake.read("silver/users").sort_by("user_id")
    model = f"{cfg['conv']}:{run}"
    lake.write_table(
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
    owner = g.user_csr.row_of_entries()
    if att is None:  # an attention-free encoder: fall back to activity order
        att = np.zeros(g.num_edges, np.float32)
    order = np.lexsort((-att, owner))
    rank = np.empty(g.num_edges, np.int32)
    starts = np.repeat(g.user_csr.indptr[:-1], g.user_csr.degree())
    rank[order] = (np.arange(g.num_edges) - starts + 1).astype(np.int32)
    edges = lake.read("silver/edges").select(["user_id", "subreddit_id", "posts", "comments"])
    table = pa.table(
        {
            "user_id": owner,
            "subreddit_id": g.user_csr.indices,
            "attention": att,
            "rank": rank,
        }
    ).join(edges, ["user_id", "subreddit_id"])
    table = table.sort_by([("user_id", "ascending"), ("rank", "ascending")])
    lake.write_table("gold/attention", table)
    inductive = int(pc.sum(pc.equal(users["role"], "inductive")).as_py() or 0)
    ctx.details.update(run=run, users=users.num_rows, inductive_users=inductive, edges=g.num_edges)
    ctx.console.print(
        f"  embeddings: {users.num_rows:,} users ({inductive:,} unseen in training); "
        f"attention: {g.num_edges:,} edges"
    )


TRAIN = Stage(
    name="train",
    inputs=TRAIN_INPUTS,
    outputs=("models/encoder",),
    section="encoder",
    engine="ray",
    run=train,
    summary="Ray Train: GATv2 encoder, link prediction + ImageAlign, checkpoints, early stop",
)

EMBED = Stage(
    name="embed",
    inputs=("models/encoder", "silver/users", "silver/edges", "silver/node_features"),
    outputs=("gold/user_embeddings", "gold/attention"),
    section="encoder",
    engine="local",
    run=embed,
    summary="embeddings of every user (unseen included) and per-edge attention",
)

if __name__ == "__main__":
    from jobs.entry import stages_main

    stages_main("jobs.encoder", TRAIN, EMBED)
