"""External benchmarks as commands (`zipp bench external NAME --path DIR`): each parser
turns a benchmark's files into users' histories, held-out references and base prompts
(`evaluation.external.ExternalBench`); `run` makes a persona per user through the cold
start's history-only path, rewrites, renders and scores into the bench tables under the
lake's ``external/<name>/`` prefix, with its report (`report`). `rapidata` has no users:
it scores human-voted image pairs and measures each scorer's agreement with the votes."""

#: the benchmarks `zipp bench external` runs
NAMES = ("pip", "pickapic", "rapidata", "movielens")
