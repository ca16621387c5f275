"""Spark jobs: the Reddit dump data source, ingest, graph build, image posts."""
