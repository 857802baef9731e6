"""The values vstore forwards to PostgreSQL (query settings, index options), each with the range the server
itself accepts, checked here before any SQL runs. The CLI and the HTTP API take their limits from this one
module, so an out-of-range value is one line and exit 2 in the CLI and a 422 over HTTP, never a server
error half-way through a command.

The ranges are pgvector's (0.8.x), where PostgreSQL enforces them:
- `ivfflat.probes` and the `lists` option: 1 .. IVFFLAT_MAX_LISTS = 32768 (src/ivfflat.h; the setting is
  registered with DefineCustomIntVariable("ivfflat.probes", ..., IVFFLAT_MIN_LISTS, IVFFLAT_MAX_LISTS) in
  src/ivfflat.c). `SET ivfflat.probes = 32769` fails with "32769 is outside the valid range for parameter
  "ivfflat.probes" (1 .. 32768)".
- `hnsw.ef_search`: 1 .. HNSW_MAX_EF_SEARCH = 1000; the `m` option 2 .. 100 and `ef_construction`
  4 .. 1000 (src/hnsw.h, add_int_reloption in src/hnsw.c): "value 101 out of bounds for option "m"".
tests/test_knob_limits.py reads the settings' ranges back from pg_settings and tries each index option
just past its limits, so a pgvector that changes them fails a test instead of a user's command.
"""

from __future__ import annotations

from dataclasses import dataclass

from vstore.errors import ConfigError


@dataclass(frozen=True)
class Limit:
    """One value forwarded to PostgreSQL: the option users type, what the server calls it, its range."""

    option: str  # as the CLI spells it ("--probes"); the HTTP parameter is the same name with '_'
    setting: str  # the server's name: a setting (ivfflat.probes) or an index option (lists)
    low: int
    high: int

    def check(self, value: int) -> int:
        """`value` when the server accepts it; ConfigError (one line, exit 2) otherwise."""
        if isinstance(value, bool) or not isinstance(value, int) or not self.low <= value <= self.high:
            raise ConfigError(
                f"{self.option} must be between {self.low} and {self.high} (the range PostgreSQL "
                f"accepts for {self.setting}); {value} is not."
            )
        return value

    def clamp(self, value: int) -> int:
        """For values vstore derives itself (a thread count): the nearest one the server accepts."""
        return max(self.low, min(self.high, int(value)))


# Query settings (SET LOCAL inside a search's transaction).
EF_SEARCH = Limit("--ef-search", "hnsw.ef_search", 1, 1000)
PROBES = Limit("--probes", "ivfflat.probes", 1, 32768)
PARALLEL_WORKERS = Limit("--threads", "max_parallel_workers_per_gather", 0, 1024)
SETTINGS = (EF_SEARCH, PROBES, PARALLEL_WORKERS)

# Index options (CREATE INDEX ... WITH (...)).
M = Limit("--m", "m", 2, 100)
EF_CONSTRUCTION = Limit("--ef-construction", "ef_construction", 4, 1000)
LISTS = Limit("--lists", "lists", 1, 32768)
INDEX_OPTIONS = (M, EF_CONSTRUCTION, LISTS)

# hnsw.ef_search for every search and measurement unless told otherwise (search, serve, eval, faiss
# search): 100 gives recall@10 >= 0.95 at 100k rows (docs/search.md); pgvector's own default is 40.
DEFAULT_EF_SEARCH = 100

# Results per search: an HNSW scan returns at most hnsw.ef_search rows, and searches raise ef_search to k,
# so k (and offset + k when paging) goes at most as deep as ef_search can.
MAX_K = EF_SEARCH.high

__all__ = [
    "DEFAULT_EF_SEARCH",
    "EF_CONSTRUCTION",
    "EF_SEARCH",
    "INDEX_OPTIONS",
    "LISTS",
    "M",
    "MAX_K",
    "PARALLEL_WORKERS",
    "PROBES",
    "SETTINGS",
    "ConfigError",
    "Limit",
]
