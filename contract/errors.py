"""The stage contract's one error."""


class ContractError(RuntimeError):
    """A stage broke its declared contract (undeclared table, config key or file)."""
