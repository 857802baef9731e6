"""The docs run (issue 19, build item 5): every ```bash / ```sh / ```console / ```python block of README.md
and docs/*.md runs on the shipped sample, unless the line above its fence says why not
(`<!-- not run: REASON -->`); an unmarked block that fails fails here, named by page and line.

Each page is one bash session (`set -e`, blocks in order, so a later block sees what an earlier one made)
in its own temp VSTORE_HOME that starts where README's set-up command leaves a user: examples/coco-sample
ingested (ViT-B-32, VSTORE_PRETRAINED=random, the embedded server), the working directory holding
`examples/`. Python blocks run with this interpreter (the repository's venv), whose bin/ comes first on
PATH, so `vstore` and `python` are the venv's. `vstore serve` commands run in the background until they
answer /health (tests/docs_serve.py). The marked blocks are reported as skipped, with their reasons
(`pytest -m slow -rs tests/test_docs_examples.py`).

The checks that read the docs without running them (markers, links, figure tables) are fast and run in
the default suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs_examples import ROOT, Block, blocks, pages, session, stray_markers
from tests.docs_figures import figure_tables_without_command, outside_pointers, untagged_commands

ALL = [block for page in pages() for block in blocks(page)]
RUN_PAGES = sorted({b.page for b in ALL if b.runnable}, key=lambda p: (p != "README.md", p))
NOT_RUN = [b for b in ALL if b.language in {"bash", "sh", "shell", "console", "python"} and b.not_run]
PAGE_TIMEOUT_S = 1200  # a bound against a hang, not a measurement
BIN = Path(sys.executable).parent


def _env(home: Path, state: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("VSTORE_")}
    return {
        **base,
        "PATH": f"{BIN}{os.pathsep}{base.get('PATH', '')}",
        "VSTORE_HOME": str(home),
        "VSTORE_PRETRAINED": "random",
        "DOCS_PYTHON": sys.executable,
        "DOCS_BLOCK": str(state),
    }


def _vstore(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "vstore"), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )


def _workdir(path: Path) -> Path:
    path.mkdir()
    (path / "examples").symlink_to(ROOT / "examples")
    return path


@pytest.fixture(scope="module")
def sample_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A stopped home with the shipped sample ingested: README's set-up command, made once and copied."""
    base = tmp_path_factory.mktemp("docs-sample")
    home = base / "home"
    env = _env(home, base / "state")
    work = _workdir(base / "work")
    try:
        ingest = _vstore(env, "ingest", "examples/coco-sample", cwd=work)
        assert ingest.returncode == 0, ingest.stderr
    finally:
        _vstore(env, "db", "stop", cwd=work)
    yield home


def _run_session(page_blocks: list[Block], tmp_path: Path, home: Path) -> tuple[str, str]:
    """Run a page's session; (the label of the block that failed, or "done"; the output to show)."""
    state = tmp_path / "block"
    env = _env(home, state)
    work = _workdir(tmp_path / "work")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    script = session(page_blocks, scratch, Path(__file__).with_name("docs_serve.py"))
    try:
        result = subprocess.run(
            ["bash", "-c", script],
            env=env,
            cwd=work,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PAGE_TIMEOUT_S,
        )
    finally:  # a page that failed half-way may leave replicas running, and always leaves its server
        for replica in sorted((home / "replicas").glob("*")) if (home / "replicas").is_dir() else []:
            _vstore(env, "db", "replica", "stop", replica.name, cwd=work)
        if (home / "pg").exists():
            _vstore(env, "db", "stop", cwd=work)
    reached = state.read_text().strip() if state.exists() else "(none)"
    if result.returncode != 0 and reached == "done":
        reached = "(after the last block)"
    output = f"exit {result.returncode}\n--- stdout ---\n{result.stdout[-3000:]}"
    output += f"\n--- stderr ---\n{result.stderr[-6000:]}"
    return reached, output


@pytest.mark.slow
@pytest.mark.parametrize("page", RUN_PAGES)
def test_the_runnable_examples_of_a_page_run(page: str, sample_home: Path, tmp_path: Path) -> None:
    page_blocks = [b for b in ALL if b.page == page]
    home = tmp_path / "home"
    # cp -a keeps the owner: as root the server runs as a system user that must own its data folder
    subprocess.run(["cp", "-a", str(sample_home), str(home)], check=True)
    shutil.rmtree(home / "run", ignore_errors=True)
    reached, output = _run_session(page_blocks, tmp_path, home)
    if reached != "done":
        failed = next((b.text for b in page_blocks if b.label == reached), "")
        pytest.fail(
            f"{reached} failed; mark it `<!-- not run: REASON -->` only if users cannot run it on the sample "
            f"either.\n{failed}\n{output}",
            pytrace=False,
        )


@pytest.mark.slow
def test_the_runner_stops_at_a_failing_block_and_names_it(tmp_path: Path) -> None:
    page = tmp_path / "planted.md"
    page.write_text(
        "```bash\necho one > one.txt\n```\n\n```python\nimport pathlib\n"
        "assert pathlib.Path('one.txt').read_text() == 'one\\n'\n```\n\n"
        "<!-- not run: planted -->\n```bash\nfalse\n```\n\n"
        "```bash\ntest -d examples/coco-sample && false\n```\n\n```bash\necho never > never.txt\n```\n"
    )
    reached, output = _run_session(blocks(page), tmp_path, tmp_path / "home")
    assert reached == "planted.md:15", output  # the python block saw the first; the marked one was left out
    assert not (tmp_path / "work" / "never.txt").exists()


@pytest.mark.slow
@pytest.mark.parametrize("block", NOT_RUN, ids=[b.label for b in NOT_RUN])
def test_marked_blocks_are_listed_with_their_reason(block: Block) -> None:
    pytest.skip(f"{block.label} not run: {block.not_run}")


def test_every_marker_gives_a_reason_and_sits_above_a_fence() -> None:
    unexplained = [b.label for b in ALL if b.not_run == ""]
    stray = [where for page in pages() for where in stray_markers(page)]
    assert not unexplained, f"`<!-- not run: -->` without a reason above {unexplained}"
    assert not stray, f"`<!-- not run: ... -->` not directly above a fence at {stray}"


def test_the_runner_finds_the_examples() -> None:
    # the README's set-up, its search examples and its Python API example are collected
    readme = [b for b in ALL if b.page == "README.md"]
    assert any(b.language == "python" and b.runnable for b in readme)
    assert any("vstore search" in b.text and b.runnable for b in readme)
    assert len(RUN_PAGES) >= 3


def test_command_blocks_name_their_language() -> None:
    found = [where for page in pages() for where in untagged_commands(blocks(page))]
    assert not found, (
        f"fences holding commands but no language (tag them ```bash, which the runner runs): {found}"
    )


def test_docs_point_nowhere_outside_the_repository_or_into_tests() -> None:
    found = [hit for page in pages() for hit in outside_pointers(page, blocks(page))]
    assert not found, "\n".join(found)


def test_each_figure_table_names_the_command_that_produced_it() -> None:
    found = [hit for page in pages() for hit in figure_tables_without_command(page)]
    where = "\n".join(found)
    assert not found, (
        f"figure tables with no command (in backticks or a code block) in their section:\n{where}"
    )


def test_the_static_checks_catch_a_planted_page(tmp_path: Path) -> None:
    page = tmp_path / "docs" / "planted.md"
    page.parent.mkdir()
    page.write_text(
        "See [the design](../../shared/DESIGN.md).\n\n"
        "<!-- not run: -->\n```bash\nvstore search x\n```\n\n"
        "<!-- not run: nothing below -->\n\n"
        "```\nvstore ingest photos/\n```\n\n"
        "```python\nfrom tests.imagegen import make_coco\n```\n\n"
        "## Figures\n\nMeasured once.\n\n| method | p50 |\n|---|---|\n| hnsw | 1.5 ms |\n\n"
        "## Figures with their command\n\n`vstore compare -k 10`:\n\n"
        "| method | p50 |\n|---|---|\n| hnsw | 1.5 ms |\n"
    )
    page_blocks = blocks(page)
    assert [b.label for b in page_blocks if b.not_run == ""] == ["planted.md:4"]
    assert stray_markers(page) == ["planted.md:8"]
    assert [hit.split(":")[1] for hit in untagged_commands(page_blocks)] == ["10"]
    pointers = outside_pointers(page, page_blocks)
    assert len(pointers) == 3, pointers  # ../shared twice (the text, the link) and the tests import
    assert any("tests.imagegen" in hit for hit in pointers)
    assert figure_tables_without_command(page) == ["planted.md:22: | method | p50 |"]
