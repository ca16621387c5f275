"""Stage `report` (local): the ZIPBench report -> reports/zipbench/ (index.html, the
summary table as Parquet, plots, image grids; self-contained; users by pseudonym only).
With `report.ground_truth` (the sample world's ground_truth folder, fingerprinted by
content) it also joins the agreement set with the planted tastes: the only stage that
reads the truth.

python -m jobs.report -c conf/cluster.yaml [key=value ...]
"""

from evaluation.report import OUT, report
from generation.render import SMOKE_MODEL
from jobs.runner import Stage

STAGE = Stage(
    name="report",
    run=report,
    engine="local",
    inputs=(
        "bench/scores",
        "bench/agreement",
        "bench/images",
        "gold/personas",
        "bench/users",
        "bench/references",
        "silver/image_embeddings",
        SMOKE_MODEL,
    ),
    files=("report.ground_truth",),
    outputs=(OUT,),
    folders=("media",),
    config=("report", "llm", "judge"),
    summary="ZIPBench HTML report: method x benchmark table, win rates vs none and swapped, "
    "gains, scorer agreement with the truth, plots, image grids",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
