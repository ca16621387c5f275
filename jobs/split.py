"""`python -m jobs.split`: stage `split` (local) as a standalone job, for spark-submit, Ray Jobs
and cron; declared in `generation.stages.split`.

python -m jobs.split -c conf/cluster.yaml [key=value ...]
"""

from generation.stages.split import STAGE

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
