"""PyG: lake -> graph, sampler, GATv2 encoder, losses, Ray Train loop, baselines, inference;
stages in `graph.stages`."""
