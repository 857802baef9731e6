"""Command-line interface. Thin: parse options, build Settings, make one library call, render."""

from __future__ import annotations

import os
import sys

import typer

# Importing a command module registers its commands on `app`.
from vstore.cli import backup as _backup  # noqa: F401
from vstore.cli import bench as _bench  # noqa: F401
from vstore.cli import compare as _compare  # noqa: F401
from vstore.cli import datasets as _datasets  # noqa: F401
from vstore.cli import db as _db  # noqa: F401
from vstore.cli import duplicates as _duplicates  # noqa: F401
from vstore.cli import evaluate as _evaluate  # noqa: F401
from vstore.cli import export as _export  # noqa: F401
from vstore.cli import faiss as _faiss  # noqa: F401
from vstore.cli import finetune as _finetune  # noqa: F401
from vstore.cli import imports as _imports  # noqa: F401
from vstore.cli import index as _index  # noqa: F401
from vstore.cli import ingest as _ingest  # noqa: F401
from vstore.cli import reembed as _reembed  # noqa: F401
from vstore.cli import replica as _replica  # noqa: F401
from vstore.cli import search as _search  # noqa: F401
from vstore.cli import serve as _serve  # noqa: F401
from vstore.cli import status as _status  # noqa: F401
from vstore.cli.app import app
from vstore.errors import VstoreError

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point: typed errors become one line on stderr and an exit code, never a traceback."""
    code = _run(argv)
    if argv is None and "torch" in sys.modules:
        # As the process's entry point, skip interpreter teardown once torch is loaded: unloading it
        # takes about a second, longer than a cached search itself. Everything is flushed and closed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _run(argv: list[str] | None) -> int:
    from vstore.cli.deprecated import modernise

    args, notices = modernise(sys.argv[1:] if argv is None else argv)
    for notice in notices:
        typer.echo(notice, err=True)
    try:
        result = app(args=args, prog_name="vstore", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except VstoreError as exc:
        typer.echo(f"Error: {exc}", err=True)
        return exc.exit_code
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # usage errors (bad option, unknown command): exit code 2
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            typer.echo(f"Error: {exc}", err=True)
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        return 130
    except OSError as exc:  # an output file or folder that cannot be written (missing parent, a file, ...)
        where = f": {exc.filename}" if exc.filename else ""
        typer.echo(f"Error: {exc.strerror or exc}{where}", err=True)
        return 1
    except Exception as exc:  # the server went away mid-command, or the role may not write
        error = _database_error(exc)
        if error is None:
            raise
        typer.echo(f"Error: {error}", err=True)
        return error.exit_code


def _database_error(exc: Exception) -> VstoreError | None:
    if "psycopg" not in sys.modules:  # no command talked to a database: not a database error
        return None
    from vstore.config import Settings
    from vstore.db.connect import database_error, name_lock_holders
    from vstore.errors import LockTimeout

    error = database_error(exc)
    if isinstance(error, LockTimeout):  # a lock wait that ran out: say who holds locks on vstore's tables
        try:
            settings: Settings | None = Settings.from_env()
        except VstoreError:
            settings = None
        error = name_lock_holders(error, settings)
    return error


if __name__ == "__main__":
    sys.exit(main())
