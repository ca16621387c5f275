"""A user the encoder never saw, embedded inductively from the communities they name: no
retraining. The trained encoder and the lake's subreddit states are loaded once
(`InductiveEncoder.load`); each new user is then one small forward pass: layer-0 state
from their visual profile and the mean of their subreddits' inputs, each layer's message
from their subreddits' states, and the first layer's attention over their subreddits
(the readout `embed_all` writes to gold/attention for everyone else)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from contract.stage_io import TableAccess
from graph.artifacts import load_model
from graph.data import edge_features
from graph.infer import embed_all
from graph.model import Encoder


@dataclass(frozen=True)
class ColdEmbedding:
    """A new user's embedding and their subreddits ranked by attention (best first)."""

    embedding: np.ndarray
    subreddit_ids: list[int]
    attention: list[float]


class InductiveEncoder:
    """The trained encoder with every subreddit's per-layer state, ready for new users."""

    def __init__(self, encoder: Encoder, sub_x: torch.Tensor, states: list, visual_dim: int):
        self.encoder = encoder
        self.sub_x = sub_x
        self.states = states
        self.visual_dim = visual_dim

    @classmethod
    def load(cls, tables: TableAccess, model_file: Path, chunk: int = 4096) -> InductiveEncoder:
        """The encoder in `model_file` over the lake's graph (history edges, every split:
        what the `embed` stage reads), its subreddit states computed once."""
        from graph.train import read_inputs

        encoder, cfg, _ = load_model(model_file)
        g = read_inputs(tables, cfg.seed, message="all", text=cfg.text_features).graph
        states: list = []
        embed_all(encoder, g, chunk, sub_states=states)
        return cls(encoder, g.sub_x, states, g.user_x.shape[1] - 2)

    @property
    def num_subreddits(self) -> int:
        return int(self.sub_x.shape[0])

    @torch.no_grad()
    def embed(
        self,
        subreddit_ids: list[int],
        posts: list[int] | None = None,
        comments: list[int] | None = None,
        visual: np.ndarray | None = None,
        scores: list[int] | None = None,
    ) -> ColdEmbedding:
        """Embed a user from their subreddits (dense ids; repeats count once) with their
        activity in each (posts, comments; one comment each when not given) and their
        visual profile (the mean embedding of their images in the lake's image feature
        space; none: zeros, as for a lake user without images) and, where known, their
        score sum in each."""
        subs = list(dict.fromkeys(int(s) for s in subreddit_ids))
        if not subs:
            raise ValueError("a new user needs at least one known subreddit")
        bad = [s for s in subs if not 0 <= s < self.num_subreddits]
        if bad:
            raise ValueError(f"unknown subreddit ids: {bad[:5]}")
        k = len(subs)
        first = {int(s): i for i, s in reversed(list(enumerate(subreddit_ids)))}
        pick = [first[s] for s in subs]
        p = np.asarray(posts, float)[pick] if posts is not None else np.zeros(k)
        c = np.asarray(comments, float)[pick] if comments is not None else np.ones(k)
        score = np.asarray(scores, float)[pick] if scores is not None else np.zeros(k)
        attr = torch.from_numpy(edge_features(p, c, score))
        idx = torch.tensor(subs, dtype=torch.int64)
        weights = attr[:, :2].sum(1) + 1.0  # as `BipartiteGraph.user_bags`
        vis = np.zeros(self.visual_dim, np.float32)
        if visual is not None and self.visual_dim:
            visual = np.asarray(visual, np.float32).ravel()
            if visual.shape[0] != self.visual_dim:
                raise ValueError(
                    f"visual profile has {visual.shape[0]} values, the lake's {self.visual_dim}"
                )
            vis = visual
        has = float(np.abs(vis).sum() > 0)
        x = torch.from_numpy(np.r_[vis, has, np.log1p(k)].astype(np.float32))[None]
        enc = self.encoder
        h = enc.user_inputs(x, (idx, torch.zeros(1, dtype=torch.int64), weights), self.sub_x)
        ei = torch.stack([torch.arange(k), torch.zeros(k, dtype=torch.int64)])
        alpha = None
        for i, states in enumerate(self.states):
            h, a = enc.step(i, "user", states[idx], h, ei, attr, attention=i == 0)
            if i == 0:
                alpha = a
        att = (
            alpha.numpy().astype(float)
            if alpha is not None
            else np.asarray(weights.numpy(), float)  # attention-free encoders: activity
        )
        order = np.argsort(-att, kind="stable")
        return ColdEmbedding(
            embedding=h[0].numpy().astype(np.float32),
            subreddit_ids=[subs[i] for i in order],
            attention=[float(att[i]) for i in order],
        )
