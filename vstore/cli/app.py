"""The Typer app and what every command shares: Settings from the environment plus options, error
rendering (one line, exit 1, or 2 for bad options), JSON output. Commands live in sibling modules."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from vstore.cli import help
from vstore.config import Settings
from vstore.db.knobs import DEFAULT_EF_SEARCH

help.install()

app = typer.Typer(
    name="vstore",
    help="Multimodal (CLIP) vector store on PostgreSQL + pgvector: ingest images and captions, search them "
    "from the CLI or any SQL client, and compare pgvector with Faiss.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=help.WorkflowGroup,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"vstore {version('vstore')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Multimodal (CLIP) vector store on PostgreSQL + pgvector: ingest images and captions, search them
    from the CLI or any SQL client, and compare pgvector with Faiss."""


db_app = typer.Typer(help="The database: embedded server lifecycle, URL, migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout, nothing else.")]
# The vocabulary every command shares (docs/cli.md): one spelling per idea.
TARGET_METAVAR = "images|captions"
KOpt = Annotated[int, typer.Option("-k", "--k", metavar="N", help="How many results (1-1000).")]
EfSearchOpt = Annotated[
    int | None,
    typer.Option(
        "--ef-search",
        metavar="N",
        help=f"HNSW candidate list size (default {DEFAULT_EF_SEARCH}, at least k; higher = better recall, "
        "slower).",
    ),
]
ProbesOpt = Annotated[
    int | None,
    typer.Option(
        "--probes", metavar="N", help="IVF lists to scan (default 1; higher = better recall, slower)."
    ),
]
DeviceOpt = Annotated[
    str | None, typer.Option("--device", metavar="DEVICE", help="Encoder device: auto, cpu or cuda.")
]


def settings(**overrides: Any) -> Settings:
    """Settings from VSTORE_* variables, with command-line options (None = not given) on top."""
    return Settings.from_env(**overrides)


def _default(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def print_json(value: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(value, default=_default) + "\n")


def info(message: str) -> None:
    """Messages for people go to stderr, so stdout stays data."""
    typer.echo(message, err=True)


def warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def warn_random_weights(model_label: str) -> None:
    """The one notice, in one wording, for every command that meets a random-weight database."""
    warn(f"{model_label} has random weights: results measure the pipeline, not a model.")
