"""`python -m jobs.score`: stage `score` (ray) as a standalone job, for spark-submit, Ray Jobs
and cron; declared in `evaluation.stages.score`.

python -m jobs.score -c conf/cluster.yaml [key=value ...]
"""

from evaluation.stages.score import STAGE

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
