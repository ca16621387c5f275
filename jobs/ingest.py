"""Stage `ingest` (Spark): Reddit dumps -> bronze/{submissions,comments} + quarantine/records.

python -m jobs.ingest -c conf/cluster.yaml [key=value ...]
"""

from jobs.runner import Stage
from pipelines.stages import ingest

STAGE = Stage(
    name="ingest",
    run=ingest,
    engine="spark",
    inputs=("input.dumps",),
    files=("ingest.blocklist",),
    outputs=("bronze/submissions", "bronze/comments", "quarantine/records"),
    config=("input", "ingest"),
    summary="Reddit dumps (.zst/.ndjson) -> bronze/{submissions,comments}, quarantine/records",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
