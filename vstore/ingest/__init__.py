"""Ingest: sources/ yield records (never touching the database) -> plan (new, changed, renamed, gone) ->
decode workers (encode/images.py) -> encoder -> writer (binary COPY + upsert) -> report.

    from vstore.ingest import ingest
    report = ingest(settings, "coco/")
"""

from vstore.ingest.pipeline import ingest, prepare_model
from vstore.ingest.report import IngestProgress, IngestReport

__all__ = ["IngestProgress", "IngestReport", "ingest", "prepare_model"]
