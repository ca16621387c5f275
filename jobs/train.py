"""`python -m jobs.train`: stage `train` (ray) as a standalone job, for spark-submit, Ray Jobs
and cron; declared in `graph.stages.train`.

python -m jobs.train -c conf/cluster.yaml [key=value ...]
"""

from jobs.entry import stage_main  # first: takes jobs/ off sys.path (jobs/__init__.py)

# isort: split
from graph.stages.train import STAGE

if __name__ == "__main__":
    stage_main(STAGE)
