"""`python -m jobs.ingest`: stage `ingest` (spark) as a standalone job, for spark-submit, Ray Jobs
and cron; declared in `pipelines.stages.ingest`.

python -m jobs.ingest -c conf/cluster.yaml [key=value ...]
"""

from jobs.entry import stage_main  # first: takes jobs/ off sys.path (jobs/__init__.py)

# isort: split
from pipelines.stages.ingest import STAGE

if __name__ == "__main__":
    stage_main(STAGE)
