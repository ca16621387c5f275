"""Exports of persona tables and the benchmark for others (`zipp export`: `exports.export`),
read through the stage contract; pseudonyms, community labels, scrubbing, the dataset card
and the writers each in a module of their own."""
