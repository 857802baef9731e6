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
