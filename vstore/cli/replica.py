"""`vstore db replica add|list|url|start|stop|remove|promote`: streaming read replicas of the embedded
primary."""

from __future__ import annotations

from typing import Annotated

import typer

from vstore.cli.app import db_app, info, print_json, settings

replica_app = typer.Typer(
    help="Streaming read replicas of the embedded server (searches go to them; writes to the primary).",
    no_args_is_help=True,
)
db_app.add_typer(replica_app, name="replica")

NameArg = Annotated[str, typer.Argument(help="The replica's name.", metavar="NAME")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@replica_app.command("add")
def replica_add(
    name: Annotated[str | None, typer.Argument(help="A name (default r1, r2, ...).", metavar="NAME")] = None,
) -> None:
    """Create a streaming replica of the running primary in $VSTORE_HOME/replicas/NAME and start it."""
    from vstore.db.replicas import add

    made = add(settings(), name)
    typer.echo(made.name)
    info(
        f"replica {made.name} {made.state} in {made.pgdata}; `vstore db replica url {made.name}` for clients"
    )


@replica_app.command("list")
def replica_list(as_json: JsonOpt = False) -> None:
    """Each replica's state (streaming, stopped, down, ...) and replay lag."""
    from vstore.db.replicas import list_replicas

    found = list_replicas(settings())
    if as_json:
        print_json(found)
        return
    if not found:
        info("no replicas (`vstore db replica add` makes one)")
    for r in found:
        lag = "-" if r.lag_s is None else f"{r.lag_s:.2f} s"
        behind = "-" if r.lag_bytes is None else f"{r.lag_bytes} B"
        typer.echo(f"{r.name:<12} {r.state:<14} lag {lag:<10} behind {behind:<12} {r.pgdata}")


@replica_app.command("url")
def replica_url(name: NameArg) -> None:
    """Print a read-only (reader role) URL of the replica for SQL clients."""
    from vstore.db.replicas import reader_url

    typer.echo(reader_url(settings(), name))


@replica_app.command("start")
def replica_start(name: NameArg) -> None:
    """Start a stopped replica (it catches up from the primary's slot)."""
    from vstore.db.replicas import start

    start(settings(), name)
    info(f"replica {name} running")


@replica_app.command("stop")
def replica_stop(name: NameArg) -> None:
    """Stop a replica (the primary keeps the WAL it needs until it returns or is removed)."""
    from vstore.db.replicas import stop

    info("stopped" if stop(settings(), name) else "was not running")


@replica_app.command("remove")
def replica_remove(name: NameArg) -> None:
    """Stop a replica, drop its replication slot on the primary and delete its folder."""
    from vstore.db.replicas import remove

    remove(settings(), name)
    info(f"replica {name} removed")


@replica_app.command("promote")
def replica_promote(name: NameArg) -> None:
    """Make a replica the primary of this home (failover). The old primary must be stopped; its data
    folder is kept beside the new one. Other replicas must be removed and added again."""
    from vstore.db.replicas import promote

    old = promote(settings(), name)
    info(f"replica {name} is now the primary; the old primary's data is kept in {old}")
