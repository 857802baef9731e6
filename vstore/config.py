"""Settings, read from VSTORE_* environment variables in this one place and passed down explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from vstore.errors import ConfigError

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "openai"


def _default_home() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("vstore", appauthor=False))


def _int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not an integer; set it to a whole number or unset it."
        ) from None


# Every lock wait of vstore's connections ends after this many seconds with a message naming the holder
# (VSTORE_LOCK_TIMEOUT). PostgreSQL's lock_timeout is an int of milliseconds: at most about 24 days.
DEFAULT_LOCK_TIMEOUT_S = 60.0
MAX_LOCK_TIMEOUT_S = 2_000_000.0


def _lock_timeout(env: Mapping[str, str]) -> float:
    raw = env.get("VSTORE_LOCK_TIMEOUT")
    if raw in (None, ""):
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= MAX_LOCK_TIMEOUT_S:
        raise ConfigError(
            f"VSTORE_LOCK_TIMEOUT={raw!r}: give seconds between 0.001 and "
            f"{MAX_LOCK_TIMEOUT_S:,.0f}, or unset it."
        )
    return value


DEFAULT_SERVE_CONNECTIONS = 4
MAX_SERVE_CONNECTIONS = 64  # PostgreSQL's default max_connections is 100, shared with every other client


@dataclass(frozen=True)
class Settings:
    """Everything configurable. `model`/`pretrained` of None mean: the database's recorded model,
    or ViT-B-32/openai for a new database."""

    database_url: str | None = None
    home: Path = field(default_factory=_default_home)
    model: str | None = None
    pretrained: str | None = None
    device: str = "auto"
    batch_size: int = 64
    workers: int | None = None  # decode worker processes; None = chosen from the core count
    threads: int | None = None  # torch intra-op threads; None = torch's default
    # An ingest planning at least this many new rows (and more than the table holds) drops the vector
    # indexes and rebuilds them at the end (docs/ingest.md has the measurements).
    bulk_load_rows: int = 10_000
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S  # seconds any lock wait may last (VSTORE_LOCK_TIMEOUT)
    # Test-only (VSTORE_TEST_PAUSE=POINT:N): see pause_point. None in every real run.
    test_pause: str | None = None
    # `vstore serve`: database connections, each serving one request at a time, so that a slow request
    # (an upload being encoded) does not hold up the others (VSTORE_SERVE_CONNECTIONS, --connections).
    serve_connections: int = DEFAULT_SERVE_CONNECTIONS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        home = env.get("VSTORE_HOME")
        connections = _int(env, "VSTORE_SERVE_CONNECTIONS", None)
        settings = cls(
            database_url=env.get("VSTORE_DATABASE_URL") or None,
            home=Path(home).expanduser() if home else _default_home(),
            model=env.get("VSTORE_MODEL") or None,
            pretrained=env.get("VSTORE_PRETRAINED") or None,
            device=env.get("VSTORE_DEVICE") or "auto",
            batch_size=_int(env, "VSTORE_BATCH_SIZE", 64) or 64,
            workers=_int(env, "VSTORE_WORKERS", None),
            threads=_int(env, "VSTORE_THREADS", None),
            bulk_load_rows=_int(env, "VSTORE_BULK_LOAD_ROWS", 10_000) or 10_000,
            lock_timeout=_lock_timeout(env),
            test_pause=env.get("VSTORE_TEST_PAUSE") or None,
            serve_connections=DEFAULT_SERVE_CONNECTIONS if connections is None else connections,
        )
        return settings.with_overrides(**overrides)

    def with_overrides(self, **overrides: object) -> Settings:
        """Apply command-line options; None means 'not given' and keeps the current value."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if "batch_size" in given and int(given["batch_size"]) < 1:  # type: ignore[call-overload]
            raise ConfigError("--batch-size must be at least 1.")
        connections = int(given.get("serve_connections", self.serve_connections))  # type: ignore[call-overload]
        if not 1 <= connections <= MAX_SERVE_CONNECTIONS:
            raise ConfigError(
                f"--connections (VSTORE_SERVE_CONNECTIONS) must be between 1 and {MAX_SERVE_CONNECTIONS}."
            )
        return replace(self, **given)  # type: ignore[arg-type]

    @property
    def pgdata(self) -> Path:
        return self.home / "pg"

    def pause_point(self, point: str, done: int) -> None:
        """Test-only: lets crash tests interrupt work at a known point instead of racing it. Long work
        calls this after each committed unit (`done` units so far) at its named point ("ingest.batch",
        "reembed.batch", "finetune.step"). With VSTORE_TEST_PAUSE=POINT:N the process, on reaching N at
        POINT, writes HOME/paused-at-POINT (its pid) and waits for a signal: the test's SIGKILL or SIGINT
        then always lands mid-work. A signal whose handler returns (finetune's Ctrl-C flag) ends the wait
        and the work goes on. Unset (every real run), this returns at once."""
        if self.test_pause is None:
            return
        name, _, count = self.test_pause.partition(":")
        if name != point or done != int(count or 1):
            return
        _wait_for_a_signal(self.home / f"paused-at-{point}")


def _wait_for_a_signal(marker: Path) -> None:
    """Write `marker`, then block until a signal with a Python handler arrives (SIGINT; SIGKILL just ends
    the process). The wake-up fd catches a signal sent before the wait began, or received by another
    thread (torch's), so the wait never misses it. Python runs the handler right after: Ctrl-C's default
    raises KeyboardInterrupt out of here. Main thread only (signal.set_wakeup_fd)."""
    import select
    import signal

    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    previous = signal.set_wakeup_fd(write_end)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(os.getpid()))
        select.select([read_end], [], [])
    finally:
        signal.set_wakeup_fd(previous)
        os.close(read_end)
        os.close(write_end)
