"""The encoder's config section (`encoder`): architecture, sampling, loss, training and
evaluation settings of the graph encoder (`graph.train`, `graph.ablation`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from schemas.config import Section


class EncoderConfig(Section):
    conv: Literal["gatv2", "gat", "sage"] = Field("gatv2", description="message-passing layer")
    hidden: int = Field(64, ge=4)
    heads: int = Field(4, ge=1)
    layers: int = Field(2, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    fanouts: list[int] = Field(default_factory=lambda: [10, 10], description="per hop, -1: all")
    sampler: Literal["auto", "own", "pyg"] = Field(
        "auto", description="auto: PyG's native sampler where pyg-lib is installed, else ours"
    )
    batch_size: int = Field(256, ge=2, description="seed edges per batch and worker")
    negatives: int = Field(4, ge=1, description="random subreddits per positive edge")
    loss: Literal["softmax", "bce"] = Field(
        "softmax",
        description="softmax: sampled softmax over in-batch + random negatives with the "
        "logQ correction; bce: binary cross-entropy against the random negatives",
    )
    lr: float = Field(3e-3, gt=0)
    lr_schedule: Literal["cosine", "constant"] = Field(
        "cosine", description="cosine: decay per epoch from lr to lr/10 over `epochs`"
    )
    weight_decay: float = Field(0.0, ge=0)
    epochs: int = Field(20, ge=1)
    select_on: Literal["recall_at_k", "auc", "posting_acc"] = Field(
        "recall_at_k", description="validation metric for the best epoch and early stopping"
    )
    patience: int = Field(
        3, ge=1, description="epochs without a better `select_on` metric before stopping"
    )
    link_weight: float = Field(1.0, ge=0)
    image_weight: float = Field(0.5, ge=0, description="ImageAlign weight; 0 turns it off")
    temperature: float = Field(0.1, gt=0, description="ImageAlign InfoNCE temperature")
    visual_dropout: float = Field(
        0.5, ge=0, le=1, description="share of batch users whose visual profile input is hidden"
    )
    num_workers: int = Field(1, ge=1, description="Ray Train workers (DDP)")
    use_gpu: bool = False
    cpus_per_worker: float = Field(1, gt=0)
    seed: int = 0
    posting_candidates: int = Field(5, ge=2, description="1 true + n-1 random subreddits")
    recall_k: int = Field(10, ge=1)
    eval_users: int = Field(5000, ge=1, description="users sampled for recall@k")
    text_features: Literal["text", "text_no_metadata"] = Field(
        "text",
        description="the subreddit text vectors the encoder reads: `text` (a subreddit's title "
        "and public description first, where the dumps had them) or `text_no_metadata` (the "
        "same without them, which `features` also writes for those subreddits: the "
        "ablation's row)",
    )
    edges_per_epoch: int | None = Field(
        None,
        ge=1,
        description="seed edges an epoch trains on at most, all workers together (null: "
        "every training edge); a seeded permutation per cycle of ceil(edges / budget) "
        "epochs, split evenly, so no edge repeats before all were seen and the train time "
        "is set by config, not by the graph's size",
    )
    val_users: int | None = Field(
        None,
        ge=1,
        description="validation users whose held-out edges pick the epoch (a seeded sample, "
        "the same every epoch; null: all)",
    )
    val_fanout: int | None = Field(
        None,
        ge=1,
        description="validate on a bounded view: the validation users' whole rows and at "
        "most this many sampled users per subreddit (graph.val_view; null: layer-wise "
        "inference over the whole graph every epoch, O(edges))",
    )
    inference_chunk: int = Field(4096, ge=1, description="nodes per layer-wise inference step")

    @model_validator(mode="after")
    def _budget_feeds_every_worker(self):
        if self.edges_per_epoch is not None and self.edges_per_epoch < self.num_workers:
            raise ValueError(
                f"encoder.edges_per_epoch ({self.edges_per_epoch}) is below "
                f"encoder.num_workers ({self.num_workers}): a worker would train on nothing"
            )
        return self

    @field_validator("heads")
    @classmethod
    def _heads_divide(cls, heads: int, info) -> int:
        hidden = info.data.get("hidden", 64)
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
        return heads
