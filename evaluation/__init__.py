"""CLIPScore, CMMD, judges and preference scorers, win rates, IPF, agreement with the
truth; the `score` and `report` stages in `evaluation.stages`."""
