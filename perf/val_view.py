"""Validating an epoch on the bounded view (`encoder.val_fanout`) against the whole graph
(the peer: layer-wise inference over every edge, as `encoder.val_fanout: null` does), on
a lake's trained encoder: seconds per validation, the view's one-time build, its size,
and how far its metrics are from the whole graph's on the same validation users.

    .venv/bin/python perf/val_view.py --lake LAKE [--val-users 2000] [--fanouts 5,10,25]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METRICS = ("auc", "posting_acc", "recall_at_k")


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    import torch

    from graph.artifacts import MODEL_FILE, load_model
    from graph.train import (
        Objective,
        evaluate,
        read_inputs,
        sample_users,
        validation_inputs,
    )

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lake", required=True)
    ap.add_argument("--val-users", type=int, default=2000)
    ap.add_argument("--fanouts", default="5,10,25")
    args = ap.parse_args()
    torch.set_num_threads(1)  # one Ray Train worker's view of the machine
    encoder, cfg, _ = load_model(Path(args.lake) / "models/encoder" / MODEL_FILE)
    inputs = read_inputs(args.lake, cfg.seed, text=cfg.text_features)
    inputs.images = inputs.images[:0]  # link metrics only: the stored file has no head
    inputs.image_users = inputs.image_users[:0]
    model = Objective(encoder, 1)
    g = inputs.graph
    users = sample_users(g.splits["val"], args.val_users, cfg.seed)
    print(f"graph: {g.num_users:,} users, {g.num_subs:,} subreddits, {g.num_edges:,} edges")
    full, wall, cpu = timed(lambda: evaluate(model, inputs, cfg, users=users)["val"])
    print(f"whole graph (peer): {wall:6.2f} s wall, {cpu:6.2f} s CPU  " + _fmt(full))
    for fanout in [int(f) for f in args.fanouts.split(",")]:
        vcfg = cfg.model_copy(update={"val_fanout": fanout})
        view, build, _ = timed(lambda c=vcfg: validation_inputs(inputs, c, users))
        got, vwall, vcpu = timed(lambda v=view, c=vcfg: evaluate(model, v, c)["val"])
        diff = {k: round(got[k] - full[k], 4) for k in METRICS}
        print(
            f"view fanout {fanout:>3}: {vwall:6.2f} s wall, {vcpu:6.2f} s CPU "
            f"(built once in {build:.2f} s; {view.graph.num_users:,} users, "
            f"{view.graph.num_edges:,} edges); {cpu / max(vcpu, 1e-9):5.1f}x less CPU "
            f"than the peer  " + _fmt(got) + f"  minus whole: {diff}"
        )


def _fmt(m: dict) -> str:
    return " ".join(f"{k} {m[k]:.4f}" for k in METRICS)


if __name__ == "__main__":
    main()
