"""`python -m jobs.embed`: stage `embed` (local) as a standalone job, for spark-submit, Ray Jobs
and cron; declared in `graph.stages.embed`.

python -m jobs.embed -c conf/cluster.yaml [key=value ...]
"""

from graph.stages.embed import STAGE

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
