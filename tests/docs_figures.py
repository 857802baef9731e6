"""Checks that read README.md and docs/*.md without running anything (tests/test_docs_examples.py): fences
holding commands name their language, nothing points outside the repository or into tests/, and each
figure table names the command that produced it."""

from __future__ import annotations

import re
from pathlib import Path

from tests.docs_examples import FENCE, ROOT, Block, name

COMMAND_START = re.compile(r"^\s*(\$ )?(vstore|python3?|pip|export|\.venv/\S+|[A-Z_]+=\S+)\s")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")
OUTSIDE = re.compile(r"\.\./shared|/work/|shared/DESIGN")
TESTS_IMPORT = re.compile(r"\b(from\s+tests\b|import\s+tests\b|tests\.\w+|python3?\s+(-m\s+)?tests[/.])")
# a measured figure: a decimal, or a number with a unit
FIGURE = re.compile(r"\d\.\d|\b\d[\d,]*\s?(ms|s|MB|GB|KB|%|rps|x|×)(?![\w])")
INLINE_COMMAND = re.compile(r"`\s*([A-Z_]+=\S+\s+)*(vstore|python3?|\.venv/|benchmarks/|cog)\b[^`]*`")
CITATION = re.compile(r"\bdocs/[\w-]+\.md\b")  # the figures come from another page's runs, cited
TABLE_RULE = re.compile(r"^\|[\s:|-]+\|?\s*$")
LOOK_AHEAD = 6  # lines below a table that may name its command ("Command: ...")


def untagged_commands(page_blocks: list[Block]) -> list[str]:
    """Fences with no language whose first line is a command: the runner would never see them."""
    found = []
    for block in page_blocks:
        first = next((line for line in block.text.splitlines() if line.strip()), "")
        if block.language == "" and COMMAND_START.match(first):
            found.append(f"{block.label}: {first.strip()[:60]}")
    return found


def outside_pointers(page: Path, page_blocks: list[Block]) -> list[str]:
    rel = name(page)
    found = []
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        if OUTSIDE.search(line):
            found.append(f"{rel}:{number}: points outside the repository: {line.strip()[:100]}")
        for target in LINK.findall(line):
            if re.match(r"^(https?:|mailto:|#)", target):
                continue
            resolved = (page.parent / target.split("#")[0]).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                found.append(f"{rel}:{number}: link to {target}, not a file of the repository")
            elif resolved.is_relative_to(ROOT / "tests"):
                found.append(f"{rel}:{number}: link into tests/ ({target}), which an install does not have")
    for block in page_blocks:
        used = [line.strip() for line in block.text.splitlines() if TESTS_IMPORT.search(line)]
        if used and block.language in {"bash", "sh", "shell", "console", "python", ""}:
            found.append(f"{block.label}: an example uses tests/, which an install does not have: {used[0]}")
    return found


def _tables(lines: list[str]) -> list[tuple[int, int, int]]:
    """(section, first, end) line indexes of each markdown table outside fences; section is the line of
    the level-1 or level-2 heading above it."""
    tables, inside, index, section = [], False, 0, 0
    while index < len(lines):
        if FENCE.match(lines[index]):
            inside = not inside
        elif not inside and re.match(r"^#{1,2} ", lines[index]):
            section = index
        elif not inside and lines[index].startswith("|") and index + 1 < len(lines):
            if TABLE_RULE.match(lines[index + 1]):
                end = index + 2
                while end < len(lines) and lines[end].startswith("|"):
                    end += 1
                tables.append((section, index, end))
                index = end
                continue
        index += 1
    return tables


def _names_a_command(lines: list[str]) -> bool:
    text = "\n".join(lines)
    has_block = any(
        (m := FENCE.match(line)) and m.group(3).lower() in {"bash", "sh", "shell", "console", "python"}
        for line in lines
    )
    return has_block or bool(INLINE_COMMAND.search(text) or CITATION.search(text))


def figure_tables_without_command(page: Path) -> list[str]:
    lines = page.read_text().splitlines()
    rel = name(page)
    found = []
    for section, first, end in _tables(lines):
        if not any(FIGURE.search(cell) for row in lines[first + 2 : end] for cell in row.split("|")[1:-1]):
            continue  # a table of words (options, routes, rules), not of figures
        after = lines[end : end + LOOK_AHEAD]
        after = after[: next((i for i, line in enumerate(after) if line.startswith("#")), len(after))]
        if not _names_a_command(lines[section:end] + after):
            found.append(f"{rel}:{first + 1}: {lines[first][:80]}")
    return found
