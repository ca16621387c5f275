"""A small Reddit world with planted structure, written as real monthly dump files."""
