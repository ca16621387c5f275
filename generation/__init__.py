"""Evidence, persona verbalisation, LLM backends, rewriting, diffusion, ZIPBench builder."""
