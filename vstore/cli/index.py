"""`vstore index create|drop|status|rebuild`: the vector indexes. Thin: one library call each."""

from __future__ import annotations

from typing import Annotated

import typer

from vstore.cli.app import TARGET_METAVAR, JsonOpt, app, info, print_json, settings, warn
from vstore.errors import ConfigError

index_app = typer.Typer(help="Vector indexes: create (HNSW or IVFFlat), drop, status.", no_args_is_help=True)
app.add_typer(index_app, name="index")

TargetOpt = Annotated[
    str, typer.Option("--target", metavar=TARGET_METAVAR, help="Which vectors: images or captions.")
]
KindOpt = Annotated[str, typer.Option("--type", metavar="hnsw|ivfflat", help="Index type: hnsw or ivfflat.")]


@index_app.command("create")
def index_create(
    target: TargetOpt = "images",
    kind: KindOpt = "hnsw",
    m: Annotated[int | None, typer.Option("--m", help="HNSW: links per node (default 16).")] = None,
    ef_construction: Annotated[
        int | None, typer.Option(help="HNSW: candidate list while building (default 64, >= 2*m).")
    ] = None,
    lists: Annotated[
        int | None,
        typer.Option(help="IVFFlat: number of lists (default rows/1000, sqrt(rows) beyond 1M)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build (or rebuild) the HNSW or IVFFlat index on a table's embeddings. Replaces an index of the same
    type; an index of the other type stays (drop it to make the planner use the new one)."""
    from vstore.db.connect import connection
    from vstore.db.indexes import check_index_options, create_index, index_name

    if (
        kind == "hnsw"
        and lists is not None
        or kind == "ivfflat"
        and (m is not None or ef_construction is not None)
    ):
        raise ConfigError("--m/--ef-construction are for --type hnsw, --lists for --type ivfflat.")
    index_name(target, kind)  # checks both against the allow-lists before anything is printed or run
    check_index_options(kind, m=m, ef_construction=ef_construction, lists=lists)  # and pgvector's ranges
    info(f"building the {kind} index on {target} (`vstore index status` in another shell shows progress) ...")
    with connection(settings(), autocommit=True) as conn:
        index = create_index(conn, target, kind, m=m, ef_construction=ef_construction, lists=lists)
    if index.sparse_lists:
        from vstore.db.indexes import default_nlist

        warn(
            f"{index.parameters['lists']} lists for {index.rows} rows: most lists hold few rows or none, "
            f"so searches with few --probes miss neighbours; --lists {default_nlist(index.rows or 0)} suits "
            "this table (rows/1000, at least 4), or use --type hnsw."
        )
    if as_json:
        print_json(index)
    else:
        info(
            f"built {index.name} ({index.size_bytes / 2**20:.1f} MiB, {index.rows} rows)"
            if index.rows is not None
            else f"built {index.name} ({index.size_bytes / 2**20:.1f} MiB)"
        )


@index_app.command("drop")
def index_drop(target: TargetOpt = "images", kind: KindOpt = "hnsw") -> None:
    """Drop a vector index. Searches then scan every row (exact, slow) unless another index exists."""
    from vstore.db.connect import connection
    from vstore.db.indexes import drop_index, index_name

    with connection(settings(), autocommit=True) as conn:
        drop_index(conn, target, kind)
    info(f"dropped {index_name(target, kind)}")


@index_app.command("status")
def index_status(as_json: JsonOpt = False) -> None:
    """Vector indexes with type, parameters, size and validity; deferred indexes; builds in progress."""
    from vstore.db.connect import connection
    from vstore.db.indexes import index_status as read_status

    with connection(settings(), autocommit=True) as conn:
        status = read_status(conn)
    if as_json:
        print_json(status)
        return
    if not status.indexes:
        typer.echo("no vector indexes: searches scan every row (`vstore index create` builds one)")
    else:
        typer.echo(f"{'table':<9} {'type':<8} {'parameters':<28} {'size':>13}  name")
    for index in status.indexes:
        params = ", ".join(f"{key}={value}" for key, value in index.parameters.items())
        valid = "" if index.valid else "  INVALID (interrupted build: run `vstore index create` again)"
        typer.echo(
            f"{index.table:<9} {index.kind:<8} {params:<28} {index.size_bytes / 2**20:9.1f} MiB  "
            f"{index.name}{valid}"
        )
    why = (
        "an ingest is bulk loading; it rebuilds this when it ends"
        if status.bulk_load_running
        else "left by an interrupted bulk load: `vstore index rebuild` or the next ingest rebuilds it"
    )
    for name in status.deferred:
        typer.echo(f"deferred  {name} ({why})")
    for build in status.building:
        percent = f"{build.percent:.0f}%" if build.percent is not None else "?"
        typer.echo(
            f"building  {build.index or '?'} on {build.table}: {build.phase}, {percent} (pid {build.pid})"
        )


@index_app.command("rebuild")
def index_rebuild() -> None:
    """Rebuild indexes left deferred by an interrupted bulk load (listed by `vstore index status`)."""
    from vstore.db.connect import connection
    from vstore.db.indexes import bulk_load_running, rebuild_deferred

    with connection(settings(), autocommit=True) as conn:
        names = rebuild_deferred(conn)
        busy = not names and bulk_load_running(conn)
    if busy:
        info("an ingest is bulk loading with its indexes deferred; it rebuilds them when it ends")
    else:
        info(f"rebuilt {', '.join(names)}" if names else "nothing was deferred")
