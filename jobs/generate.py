"""`python -m jobs.generate`: stage `generate` (ray) as a standalone job, for spark-submit, Ray Jobs
and cron; declared in `generation.stages.generate`.

python -m jobs.generate -c conf/cluster.yaml [key=value ...]
"""

from jobs.entry import stage_main  # first: takes jobs/ off sys.path (jobs/__init__.py)

# isort: split
from generation.stages.generate import STAGE

if __name__ == "__main__":
    stage_main(STAGE)
