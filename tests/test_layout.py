"""The tree's shape as a contract: the wings of DESIGN.md exist, every import from one wing into another
is an edge of ALLOWED below (DESIGN.md, Layout: arrows point down), and no module imports itself in a
circle. Imports inside functions count too: a lazy import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import vstore

PACKAGE = Path(vstore.__file__).parent
WINGS = ("db", "encode", "ingest", "search", "serve", "train", "compare", "evaluation", "bench", "cli")

# The floors of DESIGN.md: cli -> (serve, train, compare, evaluation, bench, search, ingest) -> db -> encode
# -> config/errors. A wing may import the floors below it; a sideways edge between two wings of the middle
# floor is a design decision, listed here with its reason. A new edge is added here, or not at all.
BOTTOM = frozenset({"config", "errors", "resources"})
LOWER = frozenset({"db", "encode"}) | BOTTOM
MIDDLE = frozenset({"serve", "train", "compare", "evaluation", "bench", "search", "ingest"})
SIDEWAYS: dict[str, frozenset[str]] = {
    "serve": frozenset({"search"}),  # thin over search/: the HTTP API is the Store's searches
    # eval scores compare's SearchMethods (one per engine), and `eval --mode` the search modes themselves
    # (search.hybrid's fusion, search.filters' plan), so it measures what `vstore search` does
    "evaluation": frozenset({"compare", "search"}),
    "bench": frozenset({"compare"}),  # `bench load` times compare's methods getting ready
    "train": frozenset({"evaluation", "compare"}),  # finetune's scores: evaluation.metrics, compare.top_k
}
ALLOWED: dict[str, frozenset[str]] = {
    "__main__": frozenset({"cli"}),
    "cli": MIDDLE | LOWER,
    **{wing: LOWER | SIDEWAYS.get(wing, frozenset()) for wing in MIDDLE},
    "db": frozenset({"encode"}) | BOTTOM,
    "encode": BOTTOM,
    "config": frozenset({"errors"}),
    "resources": frozenset(),
    "errors": frozenset(),
}


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    modules = {_module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from vstore.db import sql` imports the module vstore.db.sql when there is one
                targets = [
                    f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules
                ]
                targets = targets or [node.module]
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def wing_of(module: str) -> str:
    """'vstore.search.store' -> 'search'; 'vstore.config' -> 'config'; 'vstore' -> '' (the package)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def forbidden_edges(graph: dict[str, set[str]]) -> list[str]:
    """Every import from one wing into another that ALLOWED does not list, as 'module -> module'."""
    wrong = []
    for module, targets in sorted(graph.items()):
        source = wing_of(module)
        if not source:  # vstore/__init__.py: the public API re-exports from every wing
            continue
        for target in sorted(targets):
            wing = wing_of(target)
            if wing and wing != source and wing not in ALLOWED.get(source, frozenset()):
                wrong.append(f"{module} -> {target} ({source} may not import {wing})")
    return wrong


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_vstore_has_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_every_wing_to_wing_import_is_an_allowed_edge():
    assert forbidden_edges(import_graph()) == []


def test_the_allowed_edges_name_every_wing_and_point_down_or_to_a_listed_neighbour():
    assert set(WINGS) <= set(ALLOWED)
    for wing, targets in ALLOWED.items():
        assert wing not in targets
        assert "cli" not in targets or wing == "__main__"  # nothing but the entry point imports the CLI
    assert not ALLOWED["db"] & MIDDLE and not ALLOWED["encode"] & ({"db"} | MIDDLE)


def test_a_planted_wrong_edge_fails_the_contract_lazy_import_included(tmp_path):
    # A copy of the real tree plus one module of db/ that imports search/ inside a function (upward).
    package = tmp_path / "vstore"
    for path in PACKAGE.rglob("*.py"):
        copy = package / path.relative_to(PACKAGE)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert forbidden_edges(import_graph(package)) == []
    (package / "db" / "planted.py").write_text(
        "def helper():\n    from vstore.search.store import Store\n\n    return Store\n", encoding="utf-8"
    )
    (package / "encode" / "planted.py").write_text("import vstore.ingest.plan\n", encoding="utf-8")
    assert forbidden_edges(import_graph(package)) == [
        "vstore.db.planted -> vstore.search.store (db may not import search)",
        "vstore.encode.planted -> vstore.ingest.plan (encode may not import ingest)",
    ]


def test_only_the_entry_modules_sit_at_the_top_of_the_package():
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert top == ["__init__", "__main__", "config", "errors", "resources"]
    present = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert present <= set(WINGS)
    assert {"db", "encode", "ingest", "search", "compare", "evaluation", "bench", "cli"} <= present


def test_public_names_still_import_from_vstore():
    for name in vstore.__all__:
        assert getattr(vstore, name) is not None
