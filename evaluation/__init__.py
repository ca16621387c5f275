"""CLIPScore, CMMD, judge, win rates, IPF, report."""
