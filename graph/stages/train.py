"""Stage `train` (Ray Train): the persona-mining encoder (GATv2, link prediction +
ImageAlign on history images only) -> models/encoder; checkpoints in
models/checkpoints/<run>."""

from __future__ import annotations

import hashlib
import shutil

from rich.table import Table

from contract.history import REFERENCES
from contract.stage import Stage
from contract.stage_io import StageIO
from graph.artifacts import MODEL_FILE
from graph.config import EncoderConfig
from graph.train import HISTORY_TABLES, INPUT_TABLES
from schemas.tables import CHECKPOINTS


def run_name(io: StageIO) -> str:
    """Checkpoint folder name: encoder kind + hash of the config section and the inputs'
    fingerprints, so a rerun with the same inputs resumes and anything else starts afresh."""
    from graph.train import HISTORY_TABLES, INPUT_TABLES

    h = hashlib.sha1(repr(io.config.encoder.model_dump(mode="json")).encode())
    for name in (*INPUT_TABLES, *HISTORY_TABLES, REFERENCES):
        h.update(io.lake.fingerprint(name).encode())
    return f"{io.config.encoder.conv}-{h.hexdigest()[:12]}"


def _drop_other_runs(io: StageIO, keep: str) -> int:
    """Checkpoints of earlier runs were trained on earlier inputs (a deleted user's data
    among them): remove them; returns folders removed."""
    root = io.path(CHECKPOINTS)
    old = [p for p in root.iterdir() if p.is_dir() and p.name != keep] if root.exists() else []
    for p in old:
        shutil.rmtree(p, ignore_errors=True)
    return len(old)


def train(io: StageIO) -> None:
    """silver (history only for ImageAlign) -> models/encoder (metrics table, model.pt,
    metrics.png); checkpoints in models/checkpoints/<run>."""
    import numpy as np
    import pyarrow as pa

    from graph.artifacts import plot_metrics, save_model
    from graph.train import build_objective, evaluate, fit, read_inputs
    from schemas.gold import TRAIN_METRICS

    cfg: EncoderConfig = io.config.encoder
    name = run_name(io)
    storage = io.path(CHECKPOINTS)
    if io.force:
        shutil.rmtree(storage / name, ignore_errors=True)
    io.removed("checkpoint folders", _drop_other_runs(io, name))
    with io.console.status("train: starting Ray"):
        io.ray()
    io.console.print(
        f"  training {cfg.conv} ({cfg.num_workers} worker(s), run {name}); "
        f"checkpoints in {storage / name}"
    )
    state = fit(cfg, io.access, str(storage), name)
    history = state["history"]
    if state["resumed_at"]:
        io.console.print(f"  resumed from the checkpoint of epoch {state['resumed_at'][-1]}")
    rows = [{k: h.get(k) for k in TRAIN_METRICS.names} | {"run": name} for h in history]
    metrics = pa.Table.from_pylist(rows, schema=TRAIN_METRICS)
    io.write("models/encoder", metrics)
    out = io.path("models/encoder")
    plot_metrics(metrics, out / "metrics.png", f"{cfg.conv} encoder — {name}")
    inputs = read_inputs(io.access, cfg.seed, message="observed", text=cfg.text_features)
    model = build_objective(cfg, inputs)
    model.load_state_dict(state["best_model"])
    dims = {
        "user_dim": inputs.graph.user_x.shape[1],
        "sub_dim": inputs.graph.sub_x.shape[1],
        "image_dim": int(inputs.images.shape[1]) if len(inputs.images) else 0,
    }
    save_model(out / MODEL_FILE, cfg, model.encoder.state_dict(), dims, name)
    held_out = evaluate(model, inputs, cfg, ("test", "inductive"))
    test, unseen = held_out["test"], held_out["inductive"]
    _print_history(io, history, test, unseen)
    io.details.update(
        run=name,
        epochs=len(history),
        best_epoch=state.get("best_epoch"),
        resumed_at=state["resumed_at"],
        stopped_early=bool(history and history[-1].get("stopped_early")),
        test={k: _num(v) for k, v in test.items()},
        inductive={k: _num(v) for k, v in unseen.items()},
        chance_posting_acc=1 / cfg.posting_candidates,
        mean_epoch_seconds=float(np.mean([h["seconds"] for h in history])),
    )


def _num(v: float) -> float | None:
    return None if v != v else round(float(v), 4)


def _print_history(io: StageIO, history: list, test: dict, unseen: dict) -> None:
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
    io.console.print(t)
    fmt = ", ".join
    io.console.print("  test:      " + fmt(f"{k}={v:.3f}" for k, v in test.items()))
    io.console.print("  inductive: " + fmt(f"{k}={v:.3f}" for k, v in unseen.items()))


STAGE = Stage(
    name="train",
    run=train,
    engine="ray",
    inputs=INPUT_TABLES,
    history=HISTORY_TABLES,
    outputs=("models/encoder",),
    folders=(CHECKPOINTS,),
    config=("encoder",),
    summary="Ray Train: GATv2 encoder, link prediction + ImageAlign, checkpoints, early stop",
)
