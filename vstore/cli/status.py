"""`vstore db status` (server, schema, model, rows, and a look inside) and `vstore db prewarm`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from vstore.cli.app import db_app, info, print_json, settings

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MB"


def _render(report: dict[str, Any]) -> None:
    for key, value in report.items():
        if not isinstance(value, list | dict) or key == "last_backup":
            if key == "last_backup":
                value = f"{value['created_at']} in {value['path']}" if value else "none recorded"
            typer.echo(f"{key:<18} {value}")
    for index in report.get("indexes", []):
        cached = f", {index['cached']:.0%} cached" if "cached" in index else ""
        typer.echo(
            f"index              {index['index']} ({index['method']}): {_size(index['bytes'])}{cached}"
        )
    for key in ("slowest_statements", "frequent_statements"):
        for s in report.get(key, []):
            timing = f"{s['calls']} calls, {s['total_ms']} ms, mean {s['mean_ms']} ms"
            typer.echo(f"{key[:-11]:<18} {timing}: {s['query']}")
    for r in report.get("replication", []):
        lag = f"lag {r['replay_lag_s']:.2f} s, {r['behind_bytes']} B behind"
        typer.echo(f"replica            {r['name']}: {r['state']}, {lag}")
    for note in report.get("missing", []):
        typer.echo(f"missing            {note}")


@db_app.command("status")
def db_status(as_json: JsonOpt = False) -> None:
    """Server, pgvector version, schema revision, model and row counts; then index sizes (and how much of
    each is cached), cache hit ratio, slowest and most frequent statements, replication, last backup."""
    from vstore.db.insights import insights
    from vstore.db.status import database_status

    s = settings()
    report = {**database_status(s), **insights(s)}
    if as_json:
        print_json(report)
    else:
        _render(report)


@db_app.command("prewarm")
def db_prewarm(
    enable: Annotated[
        bool,
        typer.Option(
            "--enable",
            help="First preload pg_prewarm and pg_stat_statements (restarts the embedded server once) "
            "and create pg_buffercache: restarts then come back with the cached index blocks.",
        ),
    ] = False,
) -> None:
    """Load the vector (HNSW, IVFFlat) indexes into shared buffers now, so the next searches do not read
    them from disk block by block."""
    from vstore.db.insights import enable as enable_modules
    from vstore.db.insights import prewarm

    s = settings()
    if enable:
        for step in enable_modules(s):
            info(step)
    for index, blocks in prewarm(s).items():
        info(f"{index}: {blocks} blocks loaded")
