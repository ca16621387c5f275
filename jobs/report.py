"""`python -m jobs.report`: stage `report` (local) as a standalone job, for spark-submit, Ray Jobs
and cron; declared in `evaluation.stages.report`.

python -m jobs.report -c conf/cluster.yaml [key=value ...]
"""

from evaluation.stages.report import STAGE

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
