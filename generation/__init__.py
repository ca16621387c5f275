"""Evidence, persona verbalisation requests and overrides, rewriting methods, diffusion and
the ZIPBench builder; stages in `generation.stages`."""
