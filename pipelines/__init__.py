"""Spark jobs: the Reddit dump data source, ingest, graph build, text node features;
stages in `pipelines.stages`."""
