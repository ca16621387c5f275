"""Personas on demand: the floor between the CLI (`jobs`) and the domain packages. It
composes them in one process (a new user's embedding from `graph`, their evidence,
persona and rewrites from `generation`, through `llm`), where the batch stages compose
them through lake tables: the cold start (`cold_start`), the persona service
(`zipp serve`) and the human A/B study (`zipp study`)."""
