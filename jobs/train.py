"""`python -m jobs.train`: stage `train` (ray) as a standalone job, for spark-submit, Ray Jobs
and cron; declared in `graph.stages.train`.

python -m jobs.train -c conf/cluster.yaml [key=value ...]
"""

from graph.stages.train import STAGE

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
