"""Stage `report` (local): the ZIPBench report -> reports/zipbench/ (index.html, the
summary table as Parquet, plots, image grids; self-contained; users by pseudonym only).

python -m jobs.report -c conf/cluster.yaml [key=value ...]
"""

from evaluation.report import OUT, report
from jobs.runner import Stage

STAGE = Stage(
    name="report",
    run=report,
    engine="local",
    inputs=(
        "bench/scores",
        "bench/images",
        "gold/personas",
        "bench/users",
        "bench/references",
        "silver/image_embeddings",
    ),
    outputs=(OUT,),
    folders=("media",),
    config=("report", "llm", "judge"),
    summary="ZIPBench HTML report: method x benchmark table, gains, plots, image grids",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
