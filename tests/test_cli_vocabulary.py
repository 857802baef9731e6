"""One CLI vocabulary (docs/cli.md): every command's options are walked (the click objects typer builds)
and a dialect word fails the test: --nprobe, --table, --limit for a query count, --json taking a value, a
Python type in a metavar, -k without --k, an --ef-search default other than search's. Commands added
later are walked too. Planted dialects prove the walker can fail."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
import typer

from vstore.cli import app, main
from vstore.cli.deprecated import modernise
from vstore.cli.help import ORDER, WORKFLOW
from vstore.compare.names import METHOD_NAMES
from vstore.db.knobs import DEFAULT_EF_SEARCH

# Spellings of the other dialects, and the vocabulary word that replaces each.
DIALECT = {
    "--nprobe": "--probes",
    "--table": "--target",
    "--limit": "--queries",
    "--batch": "--batch-size",
    "--topk": "-k/--k",
    "--top-k": "-k/--k",
    "--json-file": "--out",
}
PYTHON_TYPE = re.compile(r"<|>|\{|\}|\[str\]|\b(int|str|float|bool|path|list|dict|tuple|none)\b")


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if hasattr(command, "commands"):
        ctx = typer.Context(command, info_name="vstore")  # WorkflowGroup adds panels and reflow on get
        for name in command.list_commands(ctx):
            yield from walk(command.get_command(ctx, name), (*path, name))
    else:
        yield path, command


def metavar(param: Any, command: Any) -> str | None:
    return param.display_type_rich(typer.Context(command, info_name=command.name))


def problems(root: Any) -> list[str]:
    """Every breach of the vocabulary, as 'vstore CMD: what'."""
    found = []
    for path, command in walk(root):
        where = f"vstore {' '.join(path)}"
        for param in command.params:
            names = [*param.opts, *param.secondary_opts]
            shown = metavar(param, command)
            if shown is not None and PYTHON_TYPE.search(shown):
                found.append(f"{where}: {param.name} shows the Python type {shown!r}; use words (N, PATH)")
            if param.param_type_name != "option":
                continue
            for name in names:
                if name in DIALECT:
                    found.append(f"{where}: {name} is a dialect word; use {DIALECT[name]}")
            if "--json" in names and not param.is_flag:
                found.append(f"{where}: --json takes a value; --json is a flag, files are --out FILE")
            if ("-k" in names) != ("--k" in names):
                found.append(f"{where}: {'/'.join(names)} must be spelled -k/--k")
            if "--ef-search" in names and param.default not in (
                None,
                DEFAULT_EF_SEARCH,
                str(DEFAULT_EF_SEARCH),
            ):
                found.append(f"{where}: --ef-search defaults to {param.default!r}, not {DEFAULT_EF_SEARCH}")
            if "--target" in names and "images|captions" not in (param.metavar or ""):
                found.append(f"{where}: --target must show images|captions")
        if command.help and re.search(r"[^\n]\n[^\n]", command.help):
            found.append(f"{where}: help is hard-wrapped (it must reflow)")
    return found


def root() -> Any:
    return typer.main.get_command(app)


def test_every_command_speaks_the_one_vocabulary():
    assert problems(root()) == []


def test_every_command_sits_in_a_workflow_panel_in_order():
    group = root()
    ctx = typer.Context(group, info_name="vstore")
    names = group.list_commands(ctx)
    unplaced = [name for name in names if name not in ORDER]
    assert unplaced == [], f"add {unplaced} to WORKFLOW in vstore/cli/help.py (and docs/cli.md)"
    panels = [group.get_command(ctx, name).rich_help_panel for name in names]
    wanted = [panel for panel, _ in WORKFLOW if panel in panels]
    assert (
        list(dict.fromkeys(panels)) == wanted == ["Data", "Search", "Measure", "Serve", "Model", "Database"]
    )


def test_method_options_list_every_method_in_full():
    for path, command in walk(root()):
        for param in command.params:
            if "--methods" in param.opts and path[0] in ("compare", "eval"):
                assert all(name in param.help for name in METHOD_NAMES), path


def test_planted_dialect_words_are_found():
    planted = typer.Typer()

    @planted.command("faiss-search")
    def faiss_search(
        nprobe: Annotated[int, typer.Option("--nprobe")] = 1,
        limit: Annotated[int, typer.Option("--limit")] = 10,
        json_file: Annotated[str | None, typer.Option("--json")] = None,
        k: Annotated[int, typer.Option("-k")] = 10,
        ef_search: Annotated[int, typer.Option("--ef-search")] = 40,
        names: Annotated[list[str] | None, typer.Option("--names", metavar="<list[str]>")] = None,
    ) -> None:
        """A command in the old dialect,
        with a hard-wrapped docstring."""

    @planted.command("other")
    def other() -> None:
        pass

    found = "\n".join(problems(typer.main.get_command(planted)))
    for word in (
        "--nprobe is a dialect",
        "--limit is a dialect",
        "--json takes a value",
        "-k must be spelled",
    ):
        assert word in found
    assert "--ef-search defaults to 40" in found and "names shows the Python type" in found
    assert "hard-wrapped" in found


def test_version_prints_the_package_version(capsys):
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"vstore {version('vstore')}"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (["faiss", "search", "x", "--nprobe", "4"], ["faiss", "search", "x", "--probes", "4"]),
        (["faiss", "build", "--table=captions"], ["faiss", "build", "--target=captions"]),
        (["index", "create", "--table", "images"], ["index", "create", "--target", "images"]),
        (["eval", "--limit", "5", "--json", "e.json"], ["eval", "--queries", "5", "--out", "e.json"]),
        (["compare", "--json", "rows.json", "-k", "5"], ["compare", "--out", "rows.json", "-k", "5"]),
        (["bench", "models", "--batch", "8"], ["bench", "models", "--batch-size", "8"]),
    ],
)
def test_old_spellings_are_rewritten_with_one_notice_each(old, new):
    args, notices = modernise(old)
    assert args == new
    assert notices and all(n.startswith("warning: ") and "\n" not in n for n in notices)


def test_current_spellings_pass_through_untouched():
    for argv in (["compare", "--json", "-k", "5"], ["eval", "--json"], ["search", "--table", "x"]):
        assert modernise(argv) == (argv, [])


def test_an_old_spelling_still_works_on_the_command_line_with_a_notice_on_stderr(tmp_path, capsys):
    # export checks --target before it touches a database, so the rewrite is seen end to end
    assert main(["export", str(tmp_path / "out"), "--table", "bogus"]) == 2  # a bad option: exit 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("warning: `vstore export --table` is deprecated") and "use --target" in err[0]
    assert err[1] == "Error: --target must be images, captions or both (got 'bogus')."
