"""The suite's own rules (issue 20, item 13): a test that starts a subprocess, a server or a browser is
marked slow, so the default run stays fast and `pytest -m slow` runs them; and a crash test never skips
when its signal comes too late (tests/pause.py makes the child wait for it instead).

Read from the test modules' source (ast): a test "starts" something when its body, a helper function of
its module it calls, or a fixture of its module it takes does."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent

# Calls that start a process, a server or a browser. The session's embedded server (conftest.py) is
# shared infrastructure, not counted; a test starting one of its own (embedded.start) is.
STARTERS = {
    "subprocess.run",
    "subprocess.Popen",
    "subprocess.call",
    "subprocess.check_call",
    "subprocess.check_output",
    "Popen",
    "sync_playwright",
    "uvicorn.run",
    "uvicorn.Server",
    "embedded.start",
    "multiprocessing.Process",
    "os.fork",
}
SIGNALS = {"send_signal", "os.kill", "process.kill"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _calls(function: ast.AST) -> set[str]:
    return {_dotted(n.func) for n in ast.walk(function) if isinstance(n, ast.Call)}


def _is_slow(decorators: list[ast.expr]) -> bool:
    return any(_dotted(d.func if isinstance(d, ast.Call) else d) == "pytest.mark.slow" for d in decorators)


def _module_slow(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(_dotted(t) == "pytestmark" for t in node.targets):
            return "pytest.mark.slow" in ast.unparse(node.value)
    return False


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def _starting(functions: dict[str, ast.FunctionDef], imported: frozenset[str] = frozenset()) -> set[str]:
    """Functions of a module that start something: directly, through a helper they call (of the module,
    or `imported` from a helper module of tests/ that starts something), or through a fixture of the
    module they take as an argument (to a fixed point)."""
    starting = {name for name, f in functions.items() if _calls(f) & STARTERS}
    starting |= set(imported)
    while True:
        more = set()
        for name, function in functions.items():
            used = {c.split(".")[0] for c in _calls(function)} | {a.arg for a in function.args.args}
            if name not in starting and used & starting:
                more.add(name)
        if not more:
            return starting
        starting |= more


def _helper_starters() -> dict[str, set[str]]:
    """For each helper module of tests/ (tests.imagegen, tests.ops_fixtures ...; not conftest.py, whose
    session server is shared), the functions that start something."""
    helpers = {}
    for path in sorted(TESTS.glob("*.py")):
        if path.name.startswith("test_") or path.name in ("conftest.py", "__init__.py"):
            continue
        helpers[f"tests.{path.stem}"] = _starting(_functions(ast.parse(path.read_text(encoding="utf-8"))))
    return helpers


def _imported_starters(tree: ast.Module, helpers: dict[str, set[str]]) -> frozenset[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module in helpers:
            names |= {a.asname or a.name for a in node.names if a.name in helpers[node.module]}
    return frozenset(names)


def unmarked_starters() -> list[str]:
    found = []
    helpers = _helper_starters()
    for path in sorted(TESTS.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if _module_slow(tree):
            continue
        functions = _functions(tree)
        for name in sorted(_starting(functions, _imported_starters(tree, helpers))):
            if name.startswith("test_") and not _is_slow(functions[name].decorator_list):
                found.append(f"{path.name}::{name}")
    return found


def test_every_test_that_starts_a_process_server_or_browser_is_marked_slow():
    assert unmarked_starters() == []


def test_the_rule_finds_a_direct_a_helper_and_a_fixture_start():
    tree = ast.parse(
        "import pytest, subprocess\n"
        "def _cli(): return subprocess.run(['vstore'])\n"
        "@pytest.fixture\n"
        "def server(): yield subprocess.Popen(['x'])\n"
        "def test_direct(): subprocess.run(['x'])\n"
        "def test_helper(): _cli()\n"
        "def test_fixture(server): pass\n"
        "@pytest.mark.slow\n"
        "def test_marked(): subprocess.run(['x'])\n"
        "def test_plain(settings): pass\n"
    )
    functions = _functions(tree)
    starting = _starting(functions)
    assert {"test_direct", "test_helper", "test_fixture", "test_marked"} <= starting
    assert "test_plain" not in starting
    assert _is_slow(functions["test_marked"].decorator_list)
    assert not _is_slow(functions["test_direct"].decorator_list)


def test_no_crash_test_skips_when_its_signal_comes_late():
    skipping = []
    for path in sorted(TESTS.glob("test_*.py")):
        for name, function in _functions(ast.parse(path.read_text(encoding="utf-8"))).items():
            calls = _calls(function)
            signals = any(c in SIGNALS or c.endswith(".send_signal") for c in calls)
            if name.startswith("test_") and signals and "pytest.skip" in calls:
                skipping.append(f"{path.name}::{name}")
    assert skipping == []
