"""`python -m jobs.score`: stage `score` (ray) as a standalone job, for spark-submit, Ray Jobs
and cron; declared in `evaluation.stages.score`.

python -m jobs.score -c conf/cluster.yaml [key=value ...]
"""

from jobs.entry import stage_main  # first: takes jobs/ off sys.path (jobs/__init__.py)

# isort: split
from evaluation.stages.score import STAGE

if __name__ == "__main__":
    stage_main(STAGE)
