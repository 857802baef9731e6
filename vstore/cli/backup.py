"""`vstore db backup|restore|dump|load`: physical backups of the embedded server and logical dumps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vstore.cli.app import db_app, info, print_json, settings

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


@db_app.command("backup")
def db_backup(
    folder: Annotated[Path, typer.Argument(help="A new (or empty) folder for the backup.", metavar="FOLDER")],
    as_json: JsonOpt = False,
) -> None:
    """Take a consistent physical backup of the embedded server (pg_basebackup with its WAL), while
    ingest and search keep running. The folder gets a manifest (version, schema revision, model, row
    counts, checksums); `vstore db restore FOLDER` checks it before it writes anything."""
    from vstore.db.backup import backup

    report = backup(settings(), folder)
    if as_json:
        print_json(report)
        return
    rows = ", ".join(f"{n} {t}" for t, n in report.rows.items()) or "no vstore schema"
    info(f"backup in {report.path}: {_size(report.bytes)} in {report.seconds:.1f} s ({rows})")


@db_app.command("restore")
def db_restore(
    folder: Annotated[Path, typer.Argument(help="A folder written by `vstore db backup`.", metavar="FOLDER")],
    home: Annotated[
        Path | None, typer.Option("--home", help="Restore into this (new) home instead of VSTORE_HOME.")
    ] = None,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Replace the database of a home that has one (server stopped)."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Restore a backup into a new home (--home), or into the current one with --yes while its server
    is stopped (the old data folder is kept beside it). A damaged or partial backup is refused and
    nothing is written."""
    from vstore.db.backup import restore

    report = restore(settings(), folder, home=home, yes=yes)
    if as_json:
        print_json(report)
        return
    rows = ", ".join(f"{n} {t}" for t, n in report.rows.items())
    info(f"restored into {report.home} in {report.seconds:.1f} s ({rows})")
    if report.replaced is not None:
        info(f"the previous data folder is kept as {report.replaced}; delete it once you are satisfied")


@db_app.command("dump")
def db_dump(
    file: Annotated[Path, typer.Argument(help="A new file for the dump.", metavar="FILE")],
) -> None:
    """Write a logical dump (pg_dump custom format): for moving to another PostgreSQL version or server."""
    from vstore.db.dump import dump

    report = dump(settings(), file)
    info(f"dump in {report.path}: {_size(report.bytes)} in {report.seconds:.1f} s")


@db_app.command("load")
def db_load(
    file: Annotated[Path, typer.Argument(help="A file written by `vstore db dump`.", metavar="FILE")],
) -> None:
    """Load a dump into an empty database (a new home): all of it, in one transaction, or nothing."""
    from vstore.db.dump import load

    report = load(settings(), file)
    info(f"loaded {report.path.name} in {report.seconds:.1f} s")
