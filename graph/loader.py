"""PyG's `NodeLoader` / `LinkLoader` driven by `BipartiteSampler`.

The graph's `HeteroData` holds no COO `edge_index` (the sampler holds int32 CSRs), so
after PyG filters node and edge features these loaders put the sampled subgraph's local
`edge_index` back from the sampler's output.
"""

from __future__ import annotations

import torch
from torch_geometric.loader import LinkLoader, NodeLoader
from torch_geometric.sampler import HeteroSamplerOutput


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
