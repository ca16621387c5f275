"""Ground floor: the stage contract (a `Stage` declaration, the `StageIO` the runner hands
its function, config views, record-level `Resume`, the benchmark's held-out rule)."""
