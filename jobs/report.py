"""`python -m jobs.report`: stage `report` (local) as a standalone job, for spark-submit, Ray Jobs
and cron; declared in `evaluation.stages.report`.

python -m jobs.report -c conf/cluster.yaml [key=value ...]
"""

from jobs.entry import stage_main  # first: takes jobs/ off sys.path (jobs/__init__.py)

# isort: split
from evaluation.stages.report import STAGE

if __name__ == "__main__":
    stage_main(STAGE)
