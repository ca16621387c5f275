"""CLIPScore, CMMD, judges, win rates, IPF; the `score` and `report` stages' domain
(`evaluation.scoring`, `evaluation.report`) and the exports (`evaluation.export`)."""
