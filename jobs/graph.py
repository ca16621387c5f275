"""`python -m jobs.graph`: stage `graph` (spark) as a standalone job, for spark-submit, Ray Jobs
and cron; declared in `pipelines.stages.graph`.

python -m jobs.graph -c conf/cluster.yaml [key=value ...]
"""

from pipelines.stages.graph import STAGE

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
