"""Ground floor: the lake (Parquet or Delta tables, atomic swaps, fingerprints, deletes,
VACUUM, the row log of resumable stages)."""
