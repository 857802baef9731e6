"""`vstore db status`: one dictionary describing server, extension, schema, model and contents."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from vstore.config import Settings
from vstore.db.connect import connection, redact, scalar


def database_status(settings: Settings) -> dict[str, Any]:
    from vstore.db import embedded
    from vstore.db.indexes import column_type
    from vstore.db.migrations import current_revision, head_revision, read_model

    report: dict[str, Any] = {}
    with connection(settings, autocommit=True, vector=False) as conn:  # starts the embedded server
        if settings.database_url:
            report["server"] = f"external {redact(settings.database_url)}"
        else:
            server = embedded.status(settings)
            report["server"] = f"embedded, pid {server.pid}" if server.running else "embedded, not running"
            report["pgdata"] = str(server.pgdata)
        report["postgres"] = scalar(conn, "SHOW server_version")
        ext = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        report["pgvector"] = ext[0] if ext else "not installed in this database"
        revision = current_revision(conn)
        report["revision"] = revision or "none (run vstore init)"
        report["head"] = head_revision()
        model = read_model(conn)
        if model is not None:
            report["model"] = model.label + (" (RANDOM WEIGHTS)" if model.random_weights else "")
            report["dim"] = model.dim
            report["storage"] = column_type(conn, "images")[0]
            for table in ("datasets", "images", "captions", "text_queries"):
                count = sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(table))
                report[table] = scalar(conn, count)
    return report
