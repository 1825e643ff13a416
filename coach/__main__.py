"""``python -m coach``: the same command as ``coach`` (the web app starts its ingest worker this way)."""

from .cli import cli

cli(prog_name="coach")
