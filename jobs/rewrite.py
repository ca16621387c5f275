"""`python -m jobs.rewrite`: stage `rewrite` (ray) as a standalone job, for spark-submit, Ray Jobs
and cron; declared in `generation.stages.rewrite`.

python -m jobs.rewrite -c conf/cluster.yaml [key=value ...]
"""

from generation.stages.rewrite import STAGE

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
