"""How the CLI presents itself, in one place: commands in workflow order under panels (data, search,
measure, serve, model, database), help text that reflows at any terminal width, and metavars in words
(PATH, N, NAME) instead of Python types. docs/cli.md shows the same order and vocabulary;
tests/test_cli_vocabulary.py walks every command and holds them to it."""

from __future__ import annotations

import re
from typing import Any

from typer.core import TyperArgument, TyperGroup, TyperOption

# The top-level commands, panel by panel, in the order a user meets them. A new command goes here (the
# vocabulary test fails for one that is not listed).
WORKFLOW: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Data", ("ingest", "import", "datasets", "export")),
    ("Search", ("search", "embed-text", "duplicates", "faiss")),
    ("Measure", ("compare", "eval", "bench")),
    ("Serve", ("serve",)),
    ("Model", ("finetune", "reembed", "runtime")),
    ("Database", ("init", "db", "index")),
)
PANEL_OF = {name: panel for panel, names in WORKFLOW for name in names}
ORDER = [name for _, names in WORKFLOW for name in names]

# What a value is, in words, when an option does not name it itself (metavar=...).
WORDS = {"int": "N", "float": "NUMBER", "str": "TEXT", "path": "PATH", "file": "FILE", "dir": "FOLDER"}


def reflow(text: str | None) -> str | None:
    """Join the lines of each paragraph, so the help wraps at the terminal's width, not the source's.
    Paragraphs are separated by a blank line; one that starts with \\b is kept as written."""
    if not text:
        return text
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


def _in_words(label: str) -> str:
    """'<int>' -> 'N', '<list[str]>' -> 'TEXT', '<path>' -> 'PATH' (typer shows Python types)."""
    bare = label.strip("<>")
    bare = bare[len("list[") : -1] if bare.startswith("list[") else bare
    return WORDS.get(bare.lower(), bare.upper())


def _option_metavar(self: TyperOption, ctx: Any) -> str | None:
    if self.is_flag:
        return None  # flags take no value: no `<bool>`
    if self.metavar is not None:
        return self.metavar
    return _in_words(self.display_type(ctx))


def _argument_metavar(self: TyperArgument, ctx: Any) -> str | None:
    if self.metavar is not None:
        return self.metavar
    return _in_words(self.display_type(ctx))


def install() -> None:
    """Metavars in words for every option and argument (typer 0.2x prints `<int>`, `<list[str]>`)."""
    TyperOption.display_type_rich = _option_metavar  # type: ignore[method-assign]
    TyperArgument.display_type_rich = _argument_metavar  # type: ignore[method-assign, assignment]


def _reflow_tree(command: Any) -> None:
    if getattr(command, "reflowed", False):
        return
    command.help = reflow(command.help)
    command.short_help = reflow(command.short_help)
    for sub in getattr(command, "commands", {}).values():
        _reflow_tree(sub)
    command.reflowed = True


class WorkflowGroup(TyperGroup):
    """The root command group: lists commands in WORKFLOW order under their panels, with reflowed help."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = list(self.commands)
        return sorted(names, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            command.rich_help_panel = PANEL_OF.get(cmd_name, "Other")  # type: ignore[attr-defined]
            _reflow_tree(command)
        return command
