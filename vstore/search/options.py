"""What a search is asked for, apart from its vector: SearchOptions (target, k, filters, index knobs) and
SearchQuery (what `vstore search` was given: a text, an image, a stored image, or arithmetic terms)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypedDict

from vstore.db import knobs
from vstore.errors import ConfigError

if TYPE_CHECKING:
    from vstore.search.arithmetic import QueryTerm

Target = Literal["images", "captions"]
TARGETS: tuple[str, ...] = ("images", "captions")
Mode = Literal["vector", "text", "hybrid"]
Order = Literal["similarity", "date"]
ORDERS: tuple[str, ...] = ("similarity", "date")
MAX_K = knobs.MAX_K  # pgvector's hnsw.ef_search ceiling; iterative scans need ef_search >= k to return k rows
# pgvector's default hnsw.ef_search is 40: recall@10 0.93 on 100k x 512 clustered vectors, 0.975 at 100 for
# 0.3 ms more per query (docs/search.md). vstore searches use 100 unless told otherwise.


@dataclass(frozen=True)
class SearchOptions:
    """Everything about a search except its query. Filters are structured values, always bound."""

    target: Target = "images"
    k: int = 10
    dataset: str | None = None
    split: str | None = None
    ef_search: int | None = None  # None: DEFAULT_EF_SEARCH
    probes: int | None = None
    exact: bool = False
    # issue 22: words (text: full text over captions, no model; hybrid: both, fused by rank)
    mode: Mode = "vector"
    rrf_k: int = 60
    # filters (None = not filtered): one of the image's labels, capture date in [after, before), size
    label: str | None = None
    taken_after: datetime | None = None
    taken_before: datetime | None = None
    min_width: int | None = None
    min_height: int | None = None
    max_distance: float | None = None  # cosine distance cutoff: the answer may hold fewer than k
    order: Order = "similarity"  # date: the same hits, newest first
    collapse_duplicates: bool = False  # one hit per near-duplicate group (search/duplicates.py)
    duplicate_distance: float | None = None  # the groups' distance; None: duplicates.DEFAULT_MAX_DISTANCE

    def __post_init__(self) -> None:
        """Checked when made, before any model is loaded or SQL runs: the values PostgreSQL would be given
        are within its own limits (db/knobs.py)."""
        if self.target not in TARGETS:
            raise ConfigError(f"unknown target {self.target!r}; choose images or captions.")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or not 1 <= self.k <= MAX_K:
            raise ConfigError(f"-k must be between 1 and {MAX_K} (results per search); {self.k} is not.")
        if self.ef_search is not None:
            knobs.EF_SEARCH.check(self.ef_search)
        if self.probes is not None:
            knobs.PROBES.check(self.probes)


class SearchFields(TypedDict, total=False):
    """SearchOptions' fields as keywords: `store.search_text("a dog", k=5)`; mypy checks the names."""

    target: Target
    k: int
    dataset: str | None
    split: str | None
    ef_search: int | None
    probes: int | None
    exact: bool
    mode: Mode
    rrf_k: int
    label: str | None
    taken_after: datetime | None
    taken_before: datetime | None
    min_width: int | None
    min_height: int | None
    max_distance: float | None
    order: Order
    collapse_duplicates: bool
    duplicate_distance: float | None


@dataclass(frozen=True)
class SearchQuery:
    """The query of `vstore search`: one of text, image file or stored image id; or, with plus/minus
    terms, the weighted sum of all of them (query arithmetic, search/arithmetic.py)."""

    text: str | None = None
    image: Path | None = None
    like: int | None = None
    plus: Sequence[str] = field(default_factory=tuple)
    minus: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.arithmetic:
            return
        if sum(q is not None for q in (self.text, self.image, self.like)) != 1:
            raise ConfigError("give exactly one query: a TEXT argument, --image FILE or --like ID.")

    @property
    def arithmetic(self) -> bool:
        """Plus/minus terms, or a weighted text ('2:a cat'): a weight prefix means the same with or without
        --plus/--minus (alone, the weight scales a unit vector, so '2:a cat' searches like 'a cat')."""
        from vstore.search.arithmetic import WEIGHT

        return bool(self.plus or self.minus or (self.text is not None and WEIGHT.match(self.text)))

    def terms(self) -> list[QueryTerm]:
        from vstore.search.arithmetic import QueryTerm, parse_terms

        terms = parse_terms([self.text] if self.text is not None else [], self.plus, self.minus)
        terms += [QueryTerm(Path(self.image))] if self.image is not None else []
        terms += [QueryTerm(int(self.like))] if self.like is not None else []
        return terms


def merged_options(options: SearchOptions | None, fields: SearchFields) -> SearchOptions:
    return replace(options or SearchOptions(), **fields)


def check_options(opts: SearchOptions) -> None:
    """ConfigError, naming the option, for a value out of range (before anything reaches PostgreSQL)."""
    from vstore.search.hybrid import MODES

    if opts.target not in TARGETS:
        raise ConfigError(f"unknown target {opts.target!r}; choose images or captions.")
    if opts.mode not in MODES:
        raise ConfigError(f"unknown --mode {opts.mode!r}; choose vector, text or hybrid.")
    if opts.order not in ORDERS:
        raise ConfigError(f"unknown --order {opts.order!r}; choose similarity or date.")
    if not 1 <= opts.k <= MAX_K:
        raise ConfigError(f"-k must be between 1 and {MAX_K}.")
    if opts.ef_search is not None:
        knobs.EF_SEARCH.check(opts.ef_search)  # the server's limits, in one place (db/knobs.py)
    if opts.probes is not None:
        knobs.PROBES.check(opts.probes)
    if not 1 <= opts.rrf_k <= 100_000:
        raise ConfigError("--rrf-k must be between 1 and 100000.")
    if opts.max_distance is not None and not 0.0 <= opts.max_distance <= 2.0:
        raise ConfigError("--max-distance must be between 0 and 2 (cosine distance).")
    if opts.max_distance is not None and opts.mode == "text":
        raise ConfigError("--max-distance needs a vector: use --mode vector or hybrid with it.")


def parse_date(value: str, option: str = "--taken-after") -> datetime:
    """A date (2024-05-01) or ISO date-time (2024-05-01T12:00, with or without a zone; none = UTC)."""
    from datetime import UTC

    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"{option} {value!r}: give a date as YYYY-MM-DD (or YYYY-MM-DDTHH:MM).") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
