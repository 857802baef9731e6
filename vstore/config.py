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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        home = env.get("VSTORE_HOME")
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
        )
        return settings.with_overrides(**overrides)

    def with_overrides(self, **overrides: object) -> Settings:
        """Apply command-line options; None means 'not given' and keeps the current value."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if "batch_size" in given and int(given["batch_size"]) < 1:  # type: ignore[call-overload]
            raise ConfigError("--batch-size must be at least 1.")
        return replace(self, **given)  # type: ignore[arg-type]

    @property
    def pgdata(self) -> Path:
        return self.home / "pg"
