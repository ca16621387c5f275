"""CLIPScore, CMMD, judges, win rates, IPF; the `score` and `report` stages' domain
(`evaluation.stages.score`, `evaluation.stages.report`) and the exports (`exports.personas`)."""
