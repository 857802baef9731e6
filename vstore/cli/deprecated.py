"""Old spellings of options, kept working for one release (0.2 removes them): the command line is
rewritten to the current vocabulary (docs/cli.md) before it is parsed, with a one-line notice on stderr.
The commands themselves declare only the current names, so their help and the vocabulary test see one
dialect."""

from __future__ import annotations

from collections.abc import Sequence

# (command path) -> {old option: current option}
RENAMED: dict[tuple[str, ...], dict[str, str]] = {
    ("faiss", "build"): {"--table": "--target"},
    ("faiss", "search"): {"--table": "--target", "--nprobe": "--probes"},
    ("export",): {"--table": "--target"},
    ("index", "create"): {"--table": "--target"},
    ("index", "drop"): {"--table": "--target"},
    ("eval",): {"--limit": "--queries"},
    ("bench", "models"): {"--batch": "--batch-size"},
}
# Commands whose --json took a file: `--json FILE` is now `--out FILE` (--json alone prints JSON).
JSON_TOOK_A_FILE: frozenset[tuple[str, ...]] = frozenset({("compare",), ("eval",)})


def _command(argv: Sequence[str]) -> tuple[str, ...]:
    """The longest command path of RENAMED / JSON_TOOK_A_FILE that argv starts with, or ()."""
    words = []
    for token in argv:
        if token.startswith("-"):
            break
        words.append(token)
    known = set(RENAMED) | JSON_TOOK_A_FILE
    for size in (2, 1):
        if tuple(words[:size]) in known:
            return tuple(words[:size])
    return ()


def modernise(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(argv in the current vocabulary, one notice per old spelling met)."""
    command = _command(argv)
    if not command:
        return list(argv), []
    renamed = RENAMED.get(command, {})
    out: list[str] = []
    notices: list[str] = []
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--":
            out += tokens[i:]
            break
        name, eq, value = token.partition("=")
        if name in renamed:
            out.append(renamed[name] + eq + value)
            notices.append(_notice(command, name, renamed[name]))
        elif name == "--json" and command in JSON_TOOK_A_FILE:
            file = value if eq else (tokens[i + 1] if i + 1 < len(tokens) else None)
            if file is not None and not file.startswith("-") and (eq or file):
                out += ["--out", file]
                notices.append(_notice(command, "--json FILE", "--out FILE"))
                i += 0 if eq else 1
            else:
                out.append(token)
        else:
            out.append(token)
        i += 1
    return out, notices


def _notice(command: tuple[str, ...], old: str, new: str) -> str:
    return (
        f"warning: `vstore {' '.join(command)} {old}` is deprecated and goes in vstore 0.2; "
        f"use {new} (docs/cli.md)."
    )
