"""`python -m jobs.rewrite`: stage `rewrite` (ray) as a standalone job, for spark-submit, Ray Jobs
and cron; declared in `generation.stages.rewrite`.

python -m jobs.rewrite -c conf/cluster.yaml [key=value ...]
"""

from jobs.entry import stage_main  # first: takes jobs/ off sys.path (jobs/__init__.py)

# isort: split
from generation.stages.rewrite import STAGE

if __name__ == "__main__":
    stage_main(STAGE)
