"""Stage `graph` (Spark): bronze -> silver users, subreddits, edges, snippets, user images.

python -m jobs.graph -c conf/cluster.yaml [key=value ...]
"""

from jobs.runner import Stage
from pipelines.stages import GRAPH_TABLES, graph

STAGE = Stage(
    name="graph",
    run=graph,
    engine="spark",
    inputs=("bronze/submissions", "bronze/comments"),
    files=("graph.bots",),
    outputs=GRAPH_TABLES,
    config=("graph",),
    summary="bronze -> silver/{users,subreddits,edges,snippets,user_images} with splits",
)

if __name__ == "__main__":
    from jobs.entry import stage_main

    stage_main(STAGE)
