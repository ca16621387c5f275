"""The top floor: the CLI, the stage runner, the DAG, the schedules, the composed config,
and one `python -m jobs.<stage>` entry per stage.

Run as a file (``spark-submit jobs/ingest.py``), an entry has this folder first on
``sys.path``, where ``jobs/graph.py`` would stand in for the ``graph`` package: importing
``jobs`` (each entry's first import) takes the folder off the path again.
"""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
