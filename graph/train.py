"""Training on Ray Train: link prediction + ImageAlign, DDP over `num_workers`, a checkpoint
every epoch, resume from the last checkpoint, a cosine learning-rate schedule, early
stopping on a validation metric (`select_on`, recall@k by default).

`fit()` is the driver; `train_worker()` runs on every Ray Train worker and loads the graph
from the lake itself (stages talk through the lake, not through objects).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from contract.history import REFERENCES
from contract.stage_io import TableAccess
from graph.config import EncoderConfig
from graph.data import BipartiteGraph, load_graph, user_image_embeddings
from graph.infer import embed_all
from graph.metrics import (
    edge_keys,
    image_recall_at_k,
    is_edge,
    link_auc,
    per_user_auc,
    posting_accuracy,
    probe_image_recall,
    recall_at_k,
)
from graph.model import Encoder, ImageHead, image_align_loss, link_loss, softmax_link_loss
from graph.sampler import SUB, TO_SUB, TO_USER, USER
from graph.val_view import validation_view

log = logging.getLogger(__name__)


@dataclass
class TrainInputs:
    """Everything one worker trains on, read from the lake's silver tables."""

    graph: BipartiteGraph
    image_users: np.ndarray  # sorted user id of every ok image
    images: np.ndarray  # standardised image embeddings, same order


#: what the encoder reads: tables, and the history of the edges and image embeddings (a
#: held-out reference post counts in no edge, and is no ImageAlign target)
INPUT_TABLES = ("silver/users", "silver/subreddits", "silver/node_features")
HISTORY_TABLES = ("silver/edges", "silver/image_embeddings")


def lake_tables(lake_root: str, stage: str = "encoder") -> TableAccess:
    """Read access to the encoder's inputs in a lake (for code outside the runner)."""
    return TableAccess(
        stage=stage,
        root=str(lake_root),
        format="parquet",
        inputs=frozenset((*INPUT_TABLES, REFERENCES)),
        history_inputs=frozenset(HISTORY_TABLES),
    )


def read_inputs(
    tables: TableAccess | str, seed: int = 0, message: str = "train", text: str = "text"
) -> TrainInputs:
    """Silver tables -> graph and history image embeddings (`text`: the subreddit
    vectors' feature set, `encoder.text_features`)."""
    if isinstance(tables, str):
        tables = lake_tables(tables)
    edges = tables.history("silver/edges")
    graph = load_graph(
        tables.read("silver/users"),
        tables.read("silver/subreddits"),
        edges,
        tables.read("silver/node_features"),
        message=message,
        seed=seed,
        text=text,
    )
    users, images = user_image_embeddings(tables.history("silver/image_embeddings"))
    order = np.argsort(users, kind="stable")
    users, images = users[order], images[order]
    if len(images):
        images = (images - images.mean(0)) / (images.std(0) + 1e-6)
    return TrainInputs(graph, users, images.astype(np.float32))


class Objective(nn.Module):
    """Encoder + ImageAlign head; forward returns the two loss parts, so DDP sees every
    parameter used in one forward."""

    def __init__(self, encoder: Encoder, image_dim: int):
        super().__init__()
        self.encoder = encoder
        self.image_head = ImageHead(encoder.sub_in.out_features, max(image_dim, 1))

    def forward(
        self, batch, bag, all_sub_x, images: torch.Tensor | None, image_rows, temp, softmax=None
    ):
        """(link loss, ImageAlign loss). `softmax` = (collide, log_q_pos, log_q_neg) for
        the sampled-softmax link loss (see `softmax_link_loss`), None for BCE."""
        h_user, h_sub = self.encoder(
            batch[USER].x,
            batch[SUB].x,
            bag,
            all_sub_x,
            batch.edge_index_dict,
            batch.edge_attr_dict,
            seed_counts(batch),
        )
        src = batch[USER].src_index
        parts = h_user[src], h_sub[batch[SUB].dst_pos_index], h_sub[batch[SUB].dst_neg_index]
        lp = link_loss(*parts) if softmax is None else softmax_link_loss(*parts, *softmax)
        proj = self.image_head(h_user[image_rows]) if images is not None else None
        if proj is None or len(proj) < 2:
            zero = sum(p.sum() for p in self.image_head.parameters()) * 0.0
            return lp, zero
        return lp, image_align_loss(proj, images, temp)


def build_encoder(cfg: EncoderConfig, graph: BipartiteGraph) -> Encoder:
    return Encoder(
        user_dim=graph.user_x.shape[1],
        sub_dim=graph.sub_x.shape[1],
        hidden=cfg.hidden,
        heads=cfg.heads,
        layers=cfg.layers,
        dropout=cfg.dropout,
        conv=cfg.conv,
    )


def build_objective(cfg: EncoderConfig, inputs: TrainInputs) -> Objective:
    """A fresh encoder + ImageAlign head sized for these inputs."""
    return Objective(build_encoder(cfg, inputs.graph), max(inputs.images.shape[1], 1))


def _drop_supervision_edges(batch, positions: torch.Tensor) -> None:
    """Remove the batch's positive edges from its message-passing subgraph, so the model
    cannot read the answer off the graph (a disjoint supervision split per batch); the
    per-hop edge counts follow."""
    for et in (TO_USER, TO_SUB):
        keep = ~torch.isin(batch[et].e_id, positions)
        batch[et].edge_index = batch[et].edge_index[:, keep]
        batch[et].edge_attr = batch[et].edge_attr[keep]
        batch[et].e_id = batch[et].e_id[keep]
        if "num_sampled_edges" not in batch[et]:  # PyG over torch-sparse reports no hops
            continue
        hop = torch.repeat_interleave(
            torch.arange(len(batch[et].num_sampled_edges)),
            torch.tensor(batch[et].num_sampled_edges, dtype=torch.long),
        )
        batch[et].num_sampled_edges = torch.bincount(
            hop[keep], minlength=len(batch[et].num_sampled_edges)
        ).tolist()


def _without_supervision_degree(user_x: torch.Tensor, batch) -> torch.Tensor:
    """User inputs whose log degree (the last column) no longer counts the batch's
    supervision edges: the edge being predicted must not show in its user's degree."""
    held = torch.bincount(batch[USER].src_index, minlength=len(user_x)).to(user_x.dtype)
    degree = torch.expm1(user_x[:, -1].float()) - held.float()
    user_x[:, -1] = torch.log1p(degree.clamp_min(0)).to(user_x.dtype)
    return user_x


def seed_counts(batch) -> dict | None:
    """Seed nodes per type and first-hop edges per edge type of a sampled batch (None
    when the sampler reports no per-hop counts: then nothing is trimmed)."""
    if any("num_sampled_edges" not in batch[et] for et in (TO_USER, TO_SUB)):
        return None
    out = {t: int(batch[t].num_sampled_nodes[0]) for t in (USER, SUB)}
    for et in (TO_USER, TO_SUB):
        counts = batch[et].num_sampled_edges
        out[et] = int(counts[0]) if len(counts) else 0
    return out


def mask_visual(user_x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """A copy of user inputs with the visual profile and has_visual zeroed (all rows, or
    `rows`), keeping log degree: what a user looks like from their subreddits alone."""
    out = user_x.clone()
    if rows is None:
        out[:, :-1] = 0
    else:
        out[rows, :-1] = 0
    return out


def _image_rows(batch, inputs: TrainInputs, rng: np.random.Generator):
    """One random image per distinct batch user that has images: (row in batch, image)."""
    if len(inputs.images) == 0:
        return None, None
    local = batch[USER].src_index.unique()
    users = batch[USER].n_id[local].numpy()
    lo = np.searchsorted(inputs.image_users, users, "left")
    hi = np.searchsorted(inputs.image_users, users, "right")
    has = hi > lo
    if has.sum() < 2:
        return None, None
    pick = lo[has] + (rng.random(has.sum()) * (hi - lo)[has]).astype(np.int64)
    return local[torch.from_numpy(has)], torch.from_numpy(inputs.images[pick])


def csr_keys(g: BipartiteGraph) -> np.ndarray:
    """The training edges' sorted keys (`edge_keys`) in O(E): the user CSR is ordered by
    (user, subreddit) already, so no sort is needed (one is done if it ever is not)."""
    keys = g.user_csr.row_of_entries().astype(np.int64) * g.num_subs + g.user_csr.indices
    return keys if bool(np.all(keys[1:] > keys[:-1])) else np.unique(keys)


def softmax_inputs(batch, train_keys: np.ndarray, graph: BipartiteGraph, negatives: int):
    """(collide, neg_collide, log_q_pos, log_q_neg) of a batch for `softmax_link_loss`:
    in-batch and uniform negatives that are training edges of the row's user (masked,
    never negatives), and the log expected count of each subreddit under in-batch
    (edge-uniform: degree / edges) and uniform sampling."""
    users = batch[USER].n_id[batch[USER].src_index].numpy().astype(np.int64)
    subs = batch[SUB].n_id[batch[SUB].dst_pos_index].numpy()
    negs = batch[SUB].n_id[batch[SUB].dst_neg_index].numpy()
    b, n = len(users), graph.num_subs
    collide = is_edge(train_keys, np.repeat(users, b), np.tile(subs, b), n).reshape(b, b)
    np.fill_diagonal(collide, False)
    neg_collide = is_edge(train_keys, np.repeat(users, negs.shape[1]), negs.ravel(), n)
    neg_collide = neg_collide.reshape(negs.shape)
    degree = graph.sub_csr.degree()[subs].astype(np.float64)
    log_q_pos = np.log(b * np.maximum(degree, 1) / max(graph.num_edges, 1))
    log_q_neg = float(np.log(negatives / graph.num_subs))
    return (
        torch.from_numpy(collide),
        torch.from_numpy(neg_collide),
        torch.from_numpy(log_q_pos).float(),
        log_q_neg,
    )


#: the splits whose edges are known when a split is scored: validation knows training,
#: test knows training and validation, unseen users know their observed edges. Nothing
#: scored on validation (which picks the epoch and the baselines' hyper-parameters) reads
#: the test split.
KNOWN_BEFORE = {
    "train": (),
    "val": ("train",),
    "test": ("train", "val"),
    "inductive": ("inductive_observed",),
}


def known_keys(g: BipartiteGraph, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(keys known before `split`, those plus the split's own): the first are excluded
    from the split's ranking, the second are never drawn as its negatives."""
    pairs = [g.splits[s] for s in KNOWN_BEFORE[split] if s in g.splits]
    before = np.concatenate(pairs, 1) if pairs else np.zeros((2, 0), np.int64)
    both = np.concatenate([before, g.splits[split]], 1)
    return edge_keys(before[0], before[1], g.num_subs), edge_keys(both[0], both[1], g.num_subs)


def epoch_edges(num_edges: int, epoch: int, budget: int | None, seed: int) -> np.ndarray:
    """The user-CSR positions of the seed edges epoch `epoch` trains on (unsorted): every
    edge in a fresh order without a budget; with one, a seeded permutation per cycle of
    ceil(edges / budget) epochs, split evenly among them (each at most `budget`), so
    every edge is drawn once per cycle and none repeats before all were seen."""
    if budget is None or budget >= num_edges:
        return np.random.default_rng(seed * 1_000_003 + epoch).permutation(num_edges)
    per_cycle = -(-num_edges // budget)
    cycle, part = divmod(epoch, per_cycle)
    perm = np.random.default_rng([seed, cycle]).permutation(num_edges)
    return np.array_split(perm, per_cycle)[part]


def sample_users(pairs: np.ndarray, n: int | None, seed: int) -> np.ndarray | None:
    """A seeded sample of `n` of the users in `pairs` (None: all of them)."""
    users = np.unique(pairs[0])
    if n is None or n >= len(users):
        return None
    return np.sort(np.random.default_rng([seed, 7]).choice(users, n, replace=False))


def validation_inputs(inputs: TrainInputs, cfg: EncoderConfig, users) -> TrainInputs:
    """The bounded view validation runs on (`encoder.val_fanout`), its images renumbered;
    `users`: the validation sample (None: every validation user)."""
    g = inputs.graph
    users = np.unique(g.splits["val"][0]) if users is None else users
    view, kept = validation_view(g, users, cfg.val_fanout, cfg.seed)
    mine = np.isin(inputs.image_users, kept)
    return TrainInputs(view, np.searchsorted(kept, inputs.image_users[mine]), inputs.images[mine])


def link_metrics(
    h_user,
    h_sub,
    inputs: TrainInputs,
    cfg: EncoderConfig,
    split: str,
    users: np.ndarray | None = None,
) -> dict:
    """AUC, posting accuracy and recall@k of any encoder's embeddings on a split (the held
    -out edges of `users` only, when given): ranked among what is not a positive known
    before it (the usual protocol), negatives drawn from what is not a positive of it or
    before it."""
    g = inputs.graph
    pairs = g.splits[split]
    if users is not None:
        pairs = pairs[:, np.isin(pairs[0], users)]
    before, known = known_keys(g, split)
    return {
        "auc": per_user_auc(h_user, h_sub, pairs, known, seed=cfg.seed),
        "auc_pooled": link_auc(h_user, h_sub, pairs, known, cfg.seed),
        "posting_acc": posting_accuracy(
            h_user, h_sub, pairs, known, cfg.posting_candidates, cfg.seed
        ),
        "recall_at_k": recall_at_k(
            h_user, h_sub, pairs, before, cfg.recall_k, cfg.eval_users, cfg.seed
        ),
    }


def train_epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    loader,
    positions: np.ndarray,
    inputs: TrainInputs,
    cfg: EncoderConfig,
    rng: np.random.Generator,
    device: torch.device,
    max_batches: int | None = None,
) -> dict:
    """One pass over `loader` (seed edges = user-CSR `positions`); mean loss parts."""
    g = inputs.graph
    sub_x = g.sub_x.to(device)
    train_keys = csr_keys(g)
    model.train()
    sums = {"loss_link": 0.0, "loss_image": 0.0}
    batches = 0
    for batch in loader:
        supervision = torch.from_numpy(positions)[batch[TO_SUB].input_id]
        _drop_supervision_edges(batch, supervision)
        bag = g.user_bags(batch[USER].n_id.numpy(), exclude=supervision.numpy())
        drop = torch.rand(len(batch[USER].x)) < cfg.visual_dropout
        batch[USER].x = _without_supervision_degree(mask_visual(batch[USER].x, drop), batch)
        rows, images = _image_rows(batch, inputs, rng)
        softmax = (
            softmax_inputs(batch, train_keys, g, cfg.negatives) if cfg.loss == "softmax" else None
        )
        if device.type != "cpu":
            batch, bag = batch.to(device), tuple(t.to(device) for t in bag)
            rows, images = (None, None) if rows is None else (rows.to(device), images.to(device))
            if softmax is not None:
                softmax = (*(t.to(device) for t in softmax[:3]), softmax[3])
        lp, ia = model(batch, bag, sub_x, images, rows, cfg.temperature, softmax)
        loss = cfg.link_weight * lp + cfg.image_weight * ia
        opt.zero_grad()
        loss.backward()
        opt.step()
        sums["loss_link"] += float(lp.detach())
        sums["loss_image"] += float(ia.detach())
        batches += 1
        if max_batches and batches >= max_batches:
            break
    return {k: v / max(batches, 1) for k, v in sums.items()} | {"batches": batches}


def blind_user_embeddings(encoder: Encoder, g: BipartiteGraph, chunk: int) -> torch.Tensor:
    """Every user's embedding with the visual profile input hidden: what their
    subreddits alone say about them."""
    blind = dataclasses.replace(g, user_x=mask_visual(g.user_x))
    return embed_all(encoder, blind, chunk)[0]


def image_probe(h_blind: torch.Tensor, inputs: TrainInputs, cfg: EncoderConfig) -> float:
    """Blind image recall@k of any encoder's user embeddings, one protocol for all: a
    ridge probe fitted on training users, scored on unseen users (never trained on)."""
    role = inputs.graph.user_role
    return probe_image_recall(
        h_blind,
        inputs.image_users,
        inputs.images,
        np.flatnonzero(~role),
        np.flatnonzero(role),
        cfg.recall_k,
    )


def evaluate(
    model: Objective,
    inputs: TrainInputs,
    cfg: EncoderConfig,
    splits: tuple[str, ...] = ("val",),
    users: np.ndarray | None = None,
) -> dict[str, dict]:
    """Metrics of the current weights per split of held-out edges (users of that split
    for image retrieval, those in `users` when given; unseen users also get the blind
    image probe), from one pass of inference for all of them."""
    g = inputs.graph
    h_user, h_sub, _ = embed_all(model.encoder, g, cfg.inference_chunk)
    out = {split: link_metrics(h_user, h_sub, inputs, cfg, split, users) for split in splits}
    if len(inputs.images):
        # the visual profile is an input: retrieval is scored without it, so it measures
        # how well the graph embedding predicts a user's images from their communities
        h_blind = blind_user_embeddings(model.encoder, g, cfg.inference_chunk)
        with torch.no_grad():
            dev = next(model.parameters()).device
            proj = model.image_head(h_blind.to(dev)).cpu()
        for split in splits:
            seen = np.unique(g.splits[split][0])
            seen = seen if users is None else np.intersect1d(seen, users)
            out[split]["image_recall_at_k"] = image_recall_at_k(
                proj, inputs.image_users, inputs.images, seen, cfg.recall_k
            )
        if "inductive" in splits:
            out["inductive"]["image_probe_recall"] = image_probe(h_blind, inputs, cfg)
    return out


def _load_checkpoint():
    import ray.train

    ckpt = ray.train.get_checkpoint()
    if ckpt is None:
        return None
    with ckpt.as_directory() as d:
        return torch.load(Path(d) / "state.pt", map_location="cpu", weights_only=False)


def train_worker(loop: dict) -> None:
    """The per-worker loop (Ray Train): `loop` is ``{"encoder": EncoderConfig, "tables":
    TableAccess}`` (`fit`). Resumes from `ray.train.get_checkpoint()`."""
    import ray.train
    import ray.train.torch

    from graph.loader import link_loader

    cfg: EncoderConfig = loop["encoder"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(max(1, int(cfg.cpus_per_worker)))
    inputs = read_inputs(loop["tables"], cfg.seed, text=cfg.text_features)
    g = inputs.graph
    torch.manual_seed(cfg.seed)
    model = build_objective(cfg, inputs)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = _load_checkpoint()
    if state:
        if state.get("done"):  # finished before: nothing to train, the checkpoint stands
            return
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        state["resumed_at"].append(state["epoch"])
    else:
        state = {
            "epoch": 0,
            "history": [],
            "best": [-1.0, -1.0],
            "best_model": None,
            "bad_epochs": 0,
            "resumed_at": [],
        }
    device = ray.train.torch.get_device() if cfg.use_gpu else torch.device("cpu")
    model.to(device)
    ddp = ray.train.torch.prepare_model(model) if world > 1 else model
    val_users = sample_users(g.splits["val"], cfg.val_users, cfg.seed)
    if cfg.val_fanout:  # built once: every epoch validates on the same view
        val_inputs, val_users = validation_inputs(inputs, cfg, val_users), None
    else:
        val_inputs = inputs
    for epoch in range(state["epoch"], cfg.epochs):
        t0 = time.perf_counter()
        for group in opt.param_groups:  # stateless per epoch: a resumed run continues it
            group["lr"] = learning_rate(cfg, epoch)
        epoch_seed = cfg.seed * 1_000_003 + epoch
        order = epoch_edges(g.num_edges, epoch, cfg.edges_per_epoch, cfg.seed)
        n_per_rank = len(order) // world
        mine = np.sort(order[rank * n_per_rank : (rank + 1) * n_per_rank])
        torch.manual_seed(epoch_seed * 131 + rank)
        rng = np.random.default_rng(epoch_seed * 131 + rank)
        loader = link_loader(
            g,
            mine,
            cfg.fanouts,
            cfg.negatives,
            cfg.batch_size,
            epoch_seed * 131 + rank,
            cfg.sampler,
        )
        metrics: dict[str, Any] = train_epoch(ddp, opt, loader, mine, inputs, cfg, rng, device)
        t_val = time.perf_counter()
        val = evaluate(model, val_inputs, cfg, users=val_users)["val"]
        metrics.update(val, val_auc=val.pop("auc"), seed_edges=len(mine) * world)
        metrics.update(
            epoch=epoch + 1,
            seconds=time.perf_counter() - t0,
            val_seconds=time.perf_counter() - t_val,
            workers=world,
        )
        state["history"].append(metrics)
        # ties (a saturated recall@k) go to the better validation AUC
        score = [_finite(metrics[SELECT_ON[cfg.select_on]]), _finite(metrics["val_auc"])]
        if state["best_model"] is None or score > list(state["best"]):
            state.update(best=score, bad_epochs=0, best_epoch=epoch + 1)
            state["best_model"] = {
                k: v.detach().cpu().clone() for k, v in model.state_dict().items()
            }
        else:
            state["bad_epochs"] += 1
        state.update(epoch=epoch + 1, model=model.state_dict(), optimizer=opt.state_dict())
        stop = state["bad_epochs"] >= cfg.patience
        metrics["stopped_early"] = stop
        state["done"] = stop or epoch + 1 == cfg.epochs
        _report(metrics, state, rank)
        if stop:
            break


#: `encoder.select_on` -> the metrics-table column it reads
SELECT_ON = {"auc": "val_auc", "recall_at_k": "recall_at_k", "posting_acc": "posting_acc"}


def _finite(x: float) -> float:
    return x if x == x else -1.0  # NaN (an empty split) ranks below every real value


def learning_rate(cfg: EncoderConfig, epoch: int) -> float:
    """The epoch's learning rate: constant, or cosine from `lr` down to `lr / 10`."""
    if cfg.lr_schedule == "constant" or cfg.epochs <= 1:
        return cfg.lr
    frac = epoch / (cfg.epochs - 1)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * frac)))


def _report(metrics: dict, state: dict, rank: int) -> None:
    """ray.train.report from every rank; rank 0 attaches the epoch's checkpoint."""
    import ray.train

    if rank != 0:
        ray.train.report(metrics, checkpoint=None)
        return
    with tempfile.TemporaryDirectory() as d:
        torch.save(state, Path(d) / "state.pt")
        (Path(d) / "metrics.json").write_text(json.dumps(metrics))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))


#: Ray Train's own record of a run's checkpoints, rewritten in place after each report
RAY_SNAPSHOT = "checkpoint_manager_snapshot.json"


def _resume_after_cut_snapshot(run_dir: Path):
    """None, unless a kill cut Ray Train's snapshot mid-rewrite (Ray then refuses to start
    the run): the cut file is removed and the newest checkpoint that loads is returned,
    to resume from (``resume_from_checkpoint``) instead of losing the run."""
    import ray.train

    snapshot = run_dir / RAY_SNAPSHOT
    try:
        json.loads(snapshot.read_text())
        return None
    except FileNotFoundError:
        return None
    except ValueError:
        pass
    snapshot.unlink()
    for d in sorted(run_dir.glob("checkpoint_*"), reverse=True):  # names sort by time
        try:
            json.loads((d / "metrics.json").read_text())
            torch.load(d / "state.pt", map_location="cpu", weights_only=False)
        except (OSError, ValueError, RuntimeError, EOFError):
            continue  # cut too
        log.warning("Ray Train's snapshot in %s was cut; resuming from %s", run_dir, d.name)
        return ray.train.Checkpoint.from_directory(str(d))
    return None


def fit(cfg: EncoderConfig, tables: TableAccess | str, storage: str, name: str) -> dict:
    """Train with `TorchTrainer` (DDP over gloo on CPU, nccl on GPU); a rerun with the same
    `storage`/`name` resumes from the last checkpoint. Returns the final checkpoint state."""
    from ray.train import CheckpointConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    if isinstance(tables, str):
        tables = lake_tables(tables)
    resume = _resume_after_cut_snapshot(Path(storage) / name)
    trainer = TorchTrainer(
        train_worker,
        train_loop_config={"encoder": cfg, "tables": tables},
        scaling_config=ScalingConfig(
            num_workers=cfg.num_workers,
            use_gpu=cfg.use_gpu,
            resources_per_worker={"CPU": cfg.cpus_per_worker},
        ),
        torch_config=TorchConfig(backend="nccl" if cfg.use_gpu else "gloo"),
        run_config=RunConfig(
            name=name,
            storage_path=str(storage),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
        resume_from_checkpoint=resume,
    )
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(f"training produced no checkpoint: {result.error}")
    with result.checkpoint.as_directory() as d:
        return torch.load(Path(d) / "state.pt", map_location="cpu", weights_only=False)
