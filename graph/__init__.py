"""PyG: lake -> HeteroData, sampler, GATv2 encoder, losses, Ray Train loop, baselines, inference."""
