"""`vstore init` and `vstore db ...`: model choice, embedded server lifecycle, URL, migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from vstore.cli.app import app, db_app, info, print_json, settings, warn_random_weights

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


@app.command()
def init(
    model: Annotated[str | None, typer.Option(help="open_clip architecture, e.g. ViT-B-32, RN50.")] = None,
    pretrained: Annotated[
        str | None,
        typer.Option(
            help="Weights: a tag (openai, laion2b_s34b_b79k), a local checkpoint path, or 'random'."
        ),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="How vectors are stored: vector (4 bytes a dimension, the default) or halfvec (2 bytes: "
            "half the index size; builds measured no faster; see docs/benchmarks.md)."
        ),
    ] = None,
    text_search: Annotated[
        str | None,
        typer.Option(
            "--text-search",
            metavar="CONFIG",
            help="Full-text configuration of the captions (--mode text|hybrid): english (the default: "
            "stems words, drops stop words), simple (every word as written), or another PostgreSQL "
            "language. Fixed when the database is created.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create the schema for one embedding model (default ViT-B-32/openai, 512-d).

    The model and storage are recorded in the database; later commands use them and refuse others.
    Running init again with the same model is harmless."""
    from vstore.db.indexes import STORAGE_TYPES
    from vstore.db.migrations import TEXT_SEARCH_CONFIGS, stored_vector_type
    from vstore.db.migrations import init as init_schema

    if storage is not None and storage not in STORAGE_TYPES:
        raise typer.BadParameter("choose vector or halfvec.", param_hint="--storage")
    if text_search is not None and text_search not in TEXT_SEARCH_CONFIGS:
        raise typer.BadParameter(
            f"choose one of {', '.join(TEXT_SEARCH_CONFIGS)}.", param_hint="--text-search"
        )
    current = settings(model=model, pretrained=pretrained)
    spec = init_schema(current, storage=storage, text_search=text_search)
    shown = stored_vector_type(current)  # what the database has, also when --storage was not given
    if as_json:
        print_json({"model": spec.name, "pretrained": spec.pretrained, "dim": spec.dim, "storage": shown})
    else:
        info(f"database ready for {spec.label} (dim {spec.dim}, storage {shown})")
        if spec.random_weights:
            warn_random_weights(spec.label)


@db_app.command("start")
def db_start(
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen",
            metavar="ADDRESS:PORT",
            help="Also accept TCP connections there (e.g. 0.0.0.0:5433), for clients on other hosts; every "
            "login still needs its password. Off by default: Unix socket only.",
        ),
    ] = None,
) -> None:
    """Start the embedded PostgreSQL (data in $VSTORE_HOME/pg). Other commands start it on demand."""
    from vstore.db import embedded

    s = settings()
    _refuse_external(s, "start")
    embedded.start(s, listen=listen)
    where = f", also on TCP {listen} (scram-sha-256)" if listen else ""
    info(f"embedded PostgreSQL running, data in {s.pgdata}{where}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL."""
    from vstore.db import embedded

    s = settings()
    _refuse_external(s, "stop")
    info("stopped" if embedded.stop(s) else "was not running")


@db_app.command("url")
def db_url() -> None:
    """Print a libpq URL for the database (psql "$(vstore db url)" opens it). Starts the embedded server."""
    from vstore.db.connect import database_url

    typer.echo(database_url(settings()))


@db_app.command("reader")
def db_reader(
    role: Annotated[str, typer.Option("--role", help="Role name.")] = "vstore_reader",
    as_json: JsonOpt = False,
) -> None:
    """Create (or refresh) a read-only role and print its URL: the one to hand to SQL clients.

    The role can SELECT every vstore table and call the vstore.* functions; it cannot insert, update,
    delete or drop anything (`vstore db url` is the owner's URL, which can). Searching with the vstore CLI
    under it works too (VSTORE_DATABASE_URL="$(vstore db reader)"); texts not yet in the text cache are
    searched without being cached. On a server other than the embedded one, each call sets a new password."""
    from vstore.db.roles import ensure_reader

    reader = ensure_reader(settings(), role)
    if as_json:
        print_json(reader)
        return
    typer.echo(reader.url)
    done = "created" if reader.created else "refreshed"
    password = "; a new password was set" if reader.password_set else ""
    info(f"role {reader.name} {done}: SELECT and vstore.* functions only{password}")


@db_app.command(
    "psql",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def db_psql(
    ctx: typer.Context,
    reader: Annotated[
        bool, typer.Option("--reader", help="Log in as the read-only role (`vstore db reader`).")
    ] = False,
) -> None:
    """Open the bundled psql on vstore's database as its owner (no system PostgreSQL client needed).

    Other arguments go to psql: `vstore db psql -c 'select 1'`, `vstore db psql --reader -f query.sql`.
    Put `--` before psql options that vstore would read itself (`vstore db psql -- --help`)."""
    import subprocess

    from vstore.db.psql import psql_invocation

    call = psql_invocation(settings(), list(ctx.args), reader=reader)
    raise typer.Exit(subprocess.run(call.argv, env=call.env).returncode)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply Alembic migrations (tables, vector columns, HNSW indexes, SQL functions)."""
    from vstore.db.migrations import upgrade

    info(f"database at revision {upgrade(settings(), revision)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision; 'base' removes everything.")],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask (needed when stdin is not a terminal).")
    ] = False,
) -> None:
    """Revert Alembic migrations. `downgrade base` drops every vstore table and function (data included),
    so it asks first on a terminal and needs --yes anywhere else."""
    from vstore.db.migrations import downgrade, downgrade_drops_data

    s = settings()
    if not yes and downgrade_drops_data(s, revision):
        _confirm(f"downgrade to {revision} drops every vstore table, with all images, captions and vectors")
    info(f"database at revision {downgrade(s, revision)}")


def _confirm(what: str) -> None:
    """Ask on a terminal; anywhere else (scripts, pipes) refuse unless --yes was given."""
    import sys

    from vstore.errors import ConfigError

    if not sys.stdin.isatty():
        raise ConfigError(f"{what}; add --yes to confirm (stdin is not a terminal, so vstore cannot ask).")
    if not typer.confirm(f"{what}. Continue?", default=False, err=True):
        raise typer.Abort()


def _refuse_external(s, verb: str) -> None:  # noqa: ANN001
    from vstore.errors import ConfigError

    if s.database_url:
        raise ConfigError(
            f"VSTORE_DATABASE_URL is set, so there is no embedded server to {verb}; "
            "unset it to manage the embedded one."
        )
