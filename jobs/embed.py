"""`python -m jobs.embed`: stage `embed` (local) as a standalone job, for spark-submit, Ray Jobs
and cron; declared in `graph.stages.embed`.

python -m jobs.embed -c conf/cluster.yaml [key=value ...]
"""

from jobs.entry import stage_main  # first: takes jobs/ off sys.path (jobs/__init__.py)

# isort: split
from graph.stages.embed import STAGE

if __name__ == "__main__":
    stage_main(STAGE)
