"""`python -m jobs.images`: stage `images` (ray) as a standalone job, for spark-submit, Ray Jobs
and cron; declared in `pipelines.stages.images`.

python -m jobs.images -c conf/cluster.yaml [key=value ...]
"""

from jobs.entry import stage_main  # first: takes jobs/ off sys.path (jobs/__init__.py)

# isort: split
from pipelines.stages.images import STAGE

if __name__ == "__main__":
    stage_main(STAGE)
