"""`python -m jobs.prompts`: stage `prompts` (local) as a standalone job, for spark-submit, Ray Jobs
and cron; declared in `generation.stages.prompts`.

python -m jobs.prompts -c conf/cluster.yaml [key=value ...]
"""

from jobs.entry import stage_main  # first: takes jobs/ off sys.path (jobs/__init__.py)

# isort: split
from generation.stages.prompts import STAGE

if __name__ == "__main__":
    stage_main(STAGE)
