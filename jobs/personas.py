"""`python -m jobs.personas personas|preferences`: stage `personas` or `preferences` (ray)
as a standalone job, for Ray Jobs and cron; declared in `generation.stages.personas`.

python -m jobs.personas personas|preferences -c conf/cluster.yaml [key=value ...]
"""

from jobs.entry import stage_main  # first: takes jobs/ off sys.path (jobs/__init__.py)

# isort: split
from generation.stages.personas import PERSONAS, PREFERENCES

if __name__ == "__main__":
    stage_main(PERSONAS, PREFERENCES)
