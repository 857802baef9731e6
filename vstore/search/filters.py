"""Filtered vector search that keeps its recall: the filters, and the plan chosen for each query.

An HNSW scan walks the graph from the query outwards and drops the rows the filter rejects. With few
matching rows it must walk far (pgvector's iterative scan keeps going until k rows pass, up to
hnsw.max_scan_tuples), and the walk through rejected regions loses recall: ParadeDB measured pgvector
HNSW near 0.93 recall at a 1 % filter on Cohere-1M whatever the scan budget. An exact scan of only the
matching rows is always right, and costs what the matching rows cost. So each filtered query gets:

- `hnsw`: the index with an iterative scan (relaxed order, re-sorted by the query), when many rows match;
- `exact`: every matching row's distance and a top-k sort, when at most `exact_rows` rows match.

The number of matching rows comes from the planner's estimate (EXPLAIN, nothing read) when that is far
from the threshold, else from a count that stops at threshold + 1. docs/search.md has the measurements
behind EXACT_ROWS and the recall/latency of both plans at 50/10/1/0.1 % selectivity.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import psycopg

from vstore.db.indexes import DEFAULT_EF_SEARCH, set_query_knobs
from vstore.db.sql import load
from vstore.errors import ConfigError

PlanKind = Literal["hnsw", "exact"]
TARGETS = ("images", "captions")
# At most this many matching rows: exact scan. See docs/search.md ("Filters that keep recall").
EXACT_ROWS = 5_000
# Trust the planner's estimate without counting when it is this many times past the threshold.
ESTIMATE_MARGIN = 4.0
# hnsw.max_scan_tuples for filtered HNSW scans: how far an iterative scan may walk before it gives up
# (pgvector's default is 20,000; a filter passing 1 row in 20 needs ~20 k tuples walked per k rows).
MAX_SCAN_TUPLES = 100_000
PG_INT_MAX = 2_147_483_647


@dataclass(frozen=True)
class Filters:
    """What a search is restricted to; None = not filtered. `taken_after` is inclusive, `taken_before`
    exclusive; an image without a capture date fails both. `label` is one of the image's labels."""

    dataset_id: int | None = None
    split: str | None = None
    label: str | None = None
    taken_after: datetime | None = None
    taken_before: datetime | None = None
    min_width: int | None = None
    min_height: int | None = None

    @property
    def active(self) -> bool:
        return any(value is not None for value in asdict(self).values())

    def params(self) -> dict[str, Any]:
        return asdict(self)

    def checked(self) -> Filters:
        """Self, after the range checks (every value vstore forwards is within PostgreSQL's limits)."""
        for name in ("min_width", "min_height"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= PG_INT_MAX:
                raise ConfigError(f"--{name.replace('_', '-')} must be between 0 and {PG_INT_MAX}.")
        for name in ("label", "split"):
            value = getattr(self, name)
            if value is not None and "\x00" in value:
                raise ConfigError(f"--{name} contains a NUL character, which PostgreSQL text cannot store.")
        if self.taken_after and self.taken_before and self.taken_after >= self.taken_before:
            raise ConfigError("--taken-after must be earlier than --taken-before.")
        return self


@dataclass(frozen=True)
class Plan:
    """How a filtered search ran, for --explain and the HTTP answer's `plan`."""

    kind: PlanKind
    matching_rows: int | None  # rows that pass the filter (estimated or counted); None when unfiltered
    counted: bool  # True: matching_rows is a count (capped at exact_rows + 1); False: the planner's estimate
    exact_rows: int
    ef_search: int
    reason: str

    def describe(self) -> str:
        return f"{self.kind}: {self.reason}"


def estimate_rows(conn: psycopg.Connection, target: str, filters: Filters) -> int:
    """The planner's estimate of the rows (images, or captions of such images) that pass `filters`."""
    _check_target(target)
    plan = conn.execute(
        "EXPLAIN (FORMAT JSON) " + load(f"queries/filtered_estimate_{target}"), filters.params()
    ).fetchone()
    assert plan is not None
    document = plan[0] if isinstance(plan[0], list) else json.loads(plan[0])
    return int(document[0]["Plan"]["Plan Rows"])


def count_rows(conn: psycopg.Connection, target: str, filters: Filters, limit: int) -> int:
    """How many rows pass `filters`, counting at most `limit`."""
    _check_target(target)
    row = conn.execute(
        load(f"queries/filtered_count_{target}"), {**filters.params(), "limit": limit}
    ).fetchone()
    assert row is not None
    return int(row[0])


def choose_plan(
    conn: psycopg.Connection,
    target: str,
    filters: Filters,
    *,
    ef_search: int = DEFAULT_EF_SEARCH,
    exact_rows: int = EXACT_ROWS,
) -> Plan:
    """The plan for one query: HNSW when nothing is filtered or many rows match, exact when few do."""
    if not filters.active:
        return Plan("hnsw", None, False, exact_rows, ef_search, "no filter")
    estimate = estimate_rows(conn, target, filters)
    if estimate > exact_rows * ESTIMATE_MARGIN:
        return Plan(
            "hnsw", estimate, False, exact_rows, ef_search,
            f"~{estimate} rows match (planner estimate), over {exact_rows}: HNSW with an iterative scan",
        )  # fmt: skip
    matching = count_rows(conn, target, filters, exact_rows + 1)
    if matching > exact_rows:
        return Plan(
            "hnsw", matching, True, exact_rows, ef_search,
            f"over {exact_rows} rows match (counted): HNSW with an iterative scan",
        )  # fmt: skip
    return Plan(
        "exact", matching, True, exact_rows, ef_search,
        f"{matching} rows match (counted), at most {exact_rows}: exact scan of the matching rows",
    )  # fmt: skip


@dataclass
class FilteredResult:
    rows: Sequence[Sequence[Any]]  # columns of queries/filtered_<target>[_exact]
    plan: Plan
    took_ms: float


def nearest(
    conn: psycopg.Connection,
    vector: np.ndarray,
    *,
    target: str = "images",
    k: int = 10,
    filters: Filters | None = None,
    max_distance: float | None = None,
    exclude_id: int | None = None,
    ef_search: int | None = None,
    plan: PlanKind | None = None,
    exact_rows: int = EXACT_ROWS,
    probes: int | None = None,
) -> FilteredResult:
    """The k nearest images or captions to `vector` that pass `filters`, within `max_distance`, by the
    plan choose_plan picks (or `plan`, to compare them). One transaction; knobs are SET LOCAL."""
    _check_target(target)
    filters = (filters or Filters()).checked()
    if max_distance is not None and not 0.0 <= max_distance <= 2.0:
        raise ConfigError("--max-distance must be between 0 and 2 (cosine distance).")
    ef = max(ef_search or DEFAULT_EF_SEARCH, k)
    started = time.perf_counter()
    with conn.transaction():
        chosen = choose_plan(conn, target, filters, ef_search=ef, exact_rows=exact_rows)
        if plan is not None and plan != chosen.kind:
            chosen = Plan(plan, chosen.matching_rows, chosen.counted, exact_rows, ef, f"{plan}: asked for")
        params = {
            **filters.params(),
            "q": np.asarray(vector, dtype=np.float32),
            "k": k,
            "max_distance": max_distance,
        }
        if target == "images":
            params["exclude_id"] = exclude_id
        name = f"queries/filtered_{target}" + ("_exact" if chosen.kind == "exact" else "")
        set_query_knobs(conn, ef_search=ef, probes=probes, iterative=chosen.kind == "hnsw")
        if chosen.kind == "hnsw" and filters.active:
            conn.execute(f"SET LOCAL hnsw.max_scan_tuples = {int(MAX_SCAN_TUPLES)}")
        rows = conn.execute(load(name), params, prepare=False).fetchall()
    return FilteredResult(rows, chosen, (time.perf_counter() - started) * 1000.0)


def order_by_date(rows: list[Any], taken_at: Any) -> list[Any]:
    """Newest first; undated last; ties by id. `taken_at(row)` gives a row's date or None."""
    dated = [r for r in rows if taken_at(r) is not None]
    undated = [r for r in rows if taken_at(r) is None]
    dated.sort(key=lambda r: taken_at(r), reverse=True)
    return dated + undated


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}; choose images or captions.")
