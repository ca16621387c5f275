"""`python -m jobs.prompts`: stage `prompts` (local) as a standalone job, for spark-submit, Ray Jobs
and cron; declared in `generation.stages.prompts`.

python -m jobs.prompts -c conf/cluster.yaml [key=value ...]
"""

from generation.stages.prompts import STAGE

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
