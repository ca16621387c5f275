"""`python -m jobs.personas personas|preferences`: stage `personas` or `preferences` (ray)
as a standalone job, for Ray Jobs and cron; declared in `generation.stages.personas`.

python -m jobs.personas personas|preferences -c conf/cluster.yaml [key=value ...]
"""

from generation.stages.personas import PERSONAS, PREFERENCES

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(PERSONAS, PREFERENCES)
