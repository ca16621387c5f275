"""`python -m jobs.smoke`: stage `smoke` (local) as a standalone job, for spark-submit, Ray Jobs
and cron; declared in `generation.stages.smoke`.

python -m jobs.smoke -c conf/local.yaml [key=value ...]
"""

from jobs.entry import stage_main  # first: takes jobs/ off sys.path (jobs/__init__.py)

# isort: split
from generation.stages.smoke import STAGE

if __name__ == "__main__":
    stage_main(STAGE)
