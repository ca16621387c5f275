"""The generation package's stages: one module per stage, its function beside its
`STAGE` declaration."""
