"""The CLI, one entry point per scheduled job, and the stage runner."""
