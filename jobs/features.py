"""`python -m jobs.features`: stage `features` (ray) as a standalone job, for spark-submit, Ray Jobs
and cron; declared in `pipelines.stages.features`.

python -m jobs.features -c conf/cluster.yaml [key=value ...]
"""

from pipelines.stages.features import STAGE

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
