"""The exports' one error: an input problem worth a one-line message."""


class ExportError(ValueError):
    """An input problem worth a one-line message (missing table, image, bad argument)."""
