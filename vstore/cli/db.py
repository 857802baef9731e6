"""`vstore init` and `vstore db ...`: model choice, embedded server lifecycle, URL, migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from vstore.cli.app import app, db_app, info, print_json, settings

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
            "half the index memory, faster HNSW builds; see docs/benchmarks.md)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create the schema for one embedding model (default ViT-B-32/openai, 512-d).

    The model and storage are recorded in the database; later commands use them and refuse others.
    Running init again with the same model is harmless."""
    from vstore.db.migrations import STORAGES
    from vstore.db.migrations import init as init_schema

    if storage is not None and storage not in STORAGES:
        raise typer.BadParameter("choose vector or halfvec.", param_hint="--storage")
    spec = init_schema(settings(model=model, pretrained=pretrained), storage=storage)
    shown = storage or "vector"
    if as_json:
        print_json({"model": spec.name, "pretrained": spec.pretrained, "dim": spec.dim, "storage": shown})
    else:
        info(f"database ready for {spec.label} (dim {spec.dim}, storage {shown})")
        if spec.random_weights:
            info("warning: random weights: search results will be meaningless (fine for pipeline tests).")


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL (data in $VSTORE_HOME/pg). Other commands start it on demand."""
    from vstore.db import embedded

    s = settings()
    _refuse_external(s, "start")
    embedded.start(s)
    info(f"embedded PostgreSQL running, data in {s.pgdata}")


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


@db_app.command("status")
def db_status(as_json: JsonOpt = False) -> None:
    """Server, pgvector version, schema revision, model and row counts."""
    from vstore.db.status import database_status

    report = database_status(settings())
    if as_json:
        print_json(report)
        return
    for key, value in report.items():
        typer.echo(f"{key:<18} {value}")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply Alembic migrations (tables, vector columns, HNSW indexes, SQL functions)."""
    from vstore.db.migrations import upgrade

    info(f"database at revision {upgrade(settings(), revision)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision; 'base' removes everything.")],
) -> None:
    """Revert Alembic migrations. `downgrade base` drops every vstore table and function (data included)."""
    from vstore.db.migrations import downgrade

    info(f"database at revision {downgrade(settings(), revision)}")


def _refuse_external(s, verb: str) -> None:  # noqa: ANN001
    from vstore.errors import ConfigError

    if s.database_url:
        raise ConfigError(
            f"VSTORE_DATABASE_URL is set, so there is no embedded server to {verb}; "
            "unset it to manage the embedded one."
        )
