"""`python -m jobs.images`: stage `images` (ray) as a standalone job, for spark-submit, Ray Jobs
and cron; declared in `pipelines.stages.images`.

python -m jobs.images -c conf/cluster.yaml [key=value ...]
"""

from pipelines.stages.images import STAGE

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
