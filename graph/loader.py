"""PyG's `NodeLoader` / `LinkLoader` driven by `BipartiteSampler`.

The graph's `HeteroData` holds no COO `edge_index` (the sampler holds int32 CSRs), so
after PyG filters node and edge features these loaders put the sampled subgraph's local
`edge_index` back from the sampler's output.
"""

from __future__ import annotations

import numpy as np
import torch
from torch_geometric.loader import LinkLoader, LinkNeighborLoader, NodeLoader
from torch_geometric.sampler import HeteroSamplerOutput, NegativeSampling

from graph.sampler import TO_SUB, TO_USER, BipartiteSampler, pyg_lib_available


class _EdgeIndexFromSampler:
    def filter_fn(self, out: HeteroSamplerOutput):  # type: ignore[override]
        transform, self.transform = self.transform, None
        try:
            data = super().filter_fn(out)
        finally:
            self.transform = transform
        for et in out.row:
            data[et].edge_index = torch.stack([out.row[et], out.col[et]])
        return data if self.transform is None else self.transform(data)


class BipartiteNodeLoader(_EdgeIndexFromSampler, NodeLoader):
    """`NodeLoader` over seed nodes of one type (e.g. ``("user", ids)``)."""


class BipartiteLinkLoader(_EdgeIndexFromSampler, LinkLoader):
    """`LinkLoader` over (user, subreddit) seed edges with triplet negatives."""


def use_pyg_sampler(choice: str) -> bool:
    """`auto`: PyG's native sampler where pyg-lib is installed, else ours; `own` / `pyg`
    force one (`pyg` needs pyg-lib or torch-sparse)."""
    if choice == "pyg":
        return True
    return choice == "auto" and pyg_lib_available()


def link_loader(
    graph,
    positions: np.ndarray,
    fanouts: list[int],
    negatives: int,
    batch_size: int,
    seed: int,
    sampler: str = "auto",
):
    """A shuffled link loader over the user-CSR edge `positions`, with triplet negatives.

    Both samplers give the same batch contract: seeds first per node type, hop-ordered
    edges with per-hop counts, `e_id` = user-CSR position (shared edge features)."""
    owner = graph.user_csr.row_of_entries()
    label = torch.from_numpy(
        np.stack([owner[positions], graph.user_csr.indices[positions]]).astype(np.int64)
    )
    neg = NegativeSampling("triplet", amount=negatives)
    if use_pyg_sampler(sampler):
        data = graph.hetero_data()
        coo = torch.from_numpy(np.stack([owner, graph.user_csr.indices]).astype(np.int64))
        data[TO_SUB].edge_index = coo  # user-CSR order in both directions: e_id is the
        data[TO_USER].edge_index = coo.flip(0)  # user-CSR position, as with our sampler
        return LinkNeighborLoader(
            data,
            num_neighbors=list(fanouts),
            edge_label_index=(TO_SUB, label),
            neg_sampling=neg,
            batch_size=batch_size,
            shuffle=True,
        )
    own = BipartiteSampler(graph.user_csr, graph.sub_csr, graph.sub_to_user_pos, fanouts, seed)
    return BipartiteLinkLoader(
        graph.hetero_data(),
        own,
        edge_label_index=(TO_SUB, label),
        neg_sampling=neg,
        batch_size=batch_size,
        shuffle=True,
    )
