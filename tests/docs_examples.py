"""The examples of README.md and docs/*.md as data: every fenced shell or Python block, whether it runs,
and the shell session that runs a page's runnable blocks in order (tests/test_docs_examples.py).

A block runs unless the line directly above its fence is `<!-- not run: REASON -->`. A block with a
`vstore serve` command runs each such command as a server in the background until it answers /health
(docs_serve.py), then stops it."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHELL = {"bash", "sh", "shell", "console"}
LANGUAGES = SHELL | {"python"}
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
MARKER = re.compile(r"^\s*<!--\s*not run:(.*?)-->\s*$")
SERVE = re.compile(r"^\s*vstore serve\b")


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root
    line: int  # of the opening fence, 1-based
    language: str  # "" when the fence names none
    text: str
    not_run: str | None  # the reason, when marked; "" for a marker without one

    @property
    def label(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runnable(self) -> bool:
        return self.language in LANGUAGES and self.not_run is None

    @property
    def serves(self) -> bool:
        return any(SERVE.match(line) for line in self.commands().splitlines())

    def commands(self) -> str:
        """The shell text: a console block's `$ ` lines (the rest is output), any other block as it is."""
        if self.language != "console":
            return self.text
        return "\n".join(line[2:] for line in self.text.splitlines() if line.startswith("$ "))


def name(page: Path) -> str:
    """A page's name in messages: relative to the repository (a planted page in a test: its file name)."""
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else page.name


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence, language = opening.groups()
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence[:3]):
            end += 1
        body = [line[len(indent) :] if line.startswith(indent) else line for line in lines[index + 1 : end]]
        marker = MARKER.match(lines[index - 1]) if index else None
        found.append(
            Block(
                page=name(page),
                line=index + 1,
                language=language.lower(),
                text="\n".join(body) + "\n",
                not_run=marker.group(1).strip() if marker else None,
            )
        )
        index = end + 1
    return found


def stray_markers(page: Path) -> list[str]:
    """Markers that are not directly above a fence: they mark nothing, so they are mistakes."""
    lines = page.read_text().splitlines()
    rel = name(page)
    return [
        f"{rel}:{number + 1}"
        for number, line in enumerate(lines)
        if MARKER.match(line) and not (number + 1 < len(lines) and FENCE.match(lines[number + 1]))
    ]


def _serve_lines(block: Block, helper: Path) -> str:
    """Each `vstore serve ...` line becomes `python docs_serve.py vstore serve ...` (its comment kept)."""
    out = []
    for line in block.commands().splitlines():
        if SERVE.match(line):
            out.append(f'"$DOCS_PYTHON" {shlex.quote(str(helper))} {line.strip()}')
        elif line.strip() and not line.lstrip().startswith("#"):
            raise ValueError(
                f"{block.label}: a block with `vstore serve` holds serve commands only: {line!r}"
            )
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def session(page_blocks: list[Block], scratch: Path, serve_helper: Path) -> str:
    """One bash script for a page: its runnable blocks in order, stopping at the first failure, with the
    label of the block being run written to $DOCS_BLOCK so a failure names it."""
    parts = ["set -e -o pipefail\n"]
    for number, block in enumerate(b for b in page_blocks if b.runnable):
        parts.append(f'echo {shlex.quote(block.label)} > "$DOCS_BLOCK"\n')
        parts.append(f"echo {shlex.quote('### ' + block.label)} >&2\n")
        if block.language == "python":
            source = scratch / f"block{number}.py"
            source.write_text(block.text)
            parts.append(f'"$DOCS_PYTHON" {shlex.quote(str(source))}\n')
        elif block.serves:
            parts.append(_serve_lines(block, serve_helper))
        else:
            parts.append(block.commands())
    parts.append('echo done > "$DOCS_BLOCK"\n')
    return "".join(parts)
