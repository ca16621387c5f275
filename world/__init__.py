"""The planted sample world (planted world v2): a small Reddit with planted structure and
its ground truth, written as real monthly dump files. Only checks and reports read the truth."""
