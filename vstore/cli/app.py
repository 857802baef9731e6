"""The Typer app and what every command shares: Settings from the environment plus options, error
rendering (one line, exit 1, or 2 for bad options), JSON output. Commands live in sibling modules."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from vstore.config import Settings


def _hide_flag_types() -> None:
    """Flags take no value, so the help must not show one: typer 0.2x prints `<bool>` beside every flag
    (--json, --exact, --help). Show types only for options that take a value."""
    from typer.core import TyperOption

    original = TyperOption.display_type_rich
    if getattr(original, "hides_flags", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else original(self, ctx)

    display_type_rich.hides_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_hide_flag_types()

app = typer.Typer(
    name="vstore",
    help="Multimodal (CLIP) vector store on PostgreSQL + pgvector: ingest images and captions, search them "
    "from the CLI or any SQL client, and compare pgvector with Faiss.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database: embedded server lifecycle, URL, migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout, nothing else.")]


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
