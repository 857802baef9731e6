"""Where the top-level alembic/ and sql/ folders are, in a checkout or in an installed wheel."""

from __future__ import annotations

from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent


def _locate(top_level: str, packaged: str) -> Path:
    in_checkout = _REPO_ROOT / top_level
    if in_checkout.is_dir():
        return in_checkout
    import importlib.resources

    return Path(str(importlib.resources.files(packaged)))


def alembic_dir() -> Path:
    return _locate("alembic", "vstore._alembic")


def sql_dir() -> Path:
    return _locate("sql", "vstore._sql")


def model_configs_dir() -> Path:
    return Path(__file__).resolve().parent / "encode" / "model_configs"
