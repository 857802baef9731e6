"""Where the top-level alembic/ and sql/ folders are, in a checkout or in an installed wheel."""

from __future__ import annotations

from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent


def _locate(top_level: str, packaged: str) -> Path:
    """The checkout's folder when vstore runs from a checkout (an editable install), else the copy inside
    the installed package. A checkout is recognised by its pyproject.toml: an installed vstore sits in
    site-packages beside the alembic *library*, whose folder must never be taken for the migrations."""
    in_checkout = _REPO_ROOT / top_level
    if (_REPO_ROOT / "pyproject.toml").is_file() and in_checkout.is_dir():
        return in_checkout
    # The wheel's copy (setup.py maps the folder to vstore/_alembic, vstore/_sql). Not through
    # importlib.resources: these folders have no __init__.py, and files() of a namespace package is a
    # MultiplexedPath whose str() is no path.
    return Path(__file__).resolve().parent / packaged


def alembic_dir() -> Path:
    return _locate("alembic", "_alembic")


def sql_dir() -> Path:
    return _locate("sql", "_sql")


def model_configs_dir() -> Path:
    return Path(__file__).resolve().parent / "encode" / "model_configs"
