"""Schema lifecycle through Alembic: init (choose the model), upgrade, downgrade, current revision, and
the model record every other module checks against."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import psycopg

from vstore.config import DEFAULT_MODEL, DEFAULT_PRETRAINED, Settings
from vstore.db import locks
from vstore.db.connect import connection, ensure_pgvector
from vstore.db.indexes import STORAGE_TYPES, column_type
from vstore.encode.encoder import RANDOM, ModelSpec, resolve_spec, surely_same_model
from vstore.errors import ConfigError, LockTimeout, ModelMismatch, SchemaNotReady, VstoreError

HEAD = "head"
# Full-text configurations `vstore init --text-search` offers (PostgreSQL's built-in ones): english stems
# words and drops stop words; simple keeps every word as written (any language, names, codes).
TEXT_SEARCH_CONFIGS = (
    "english",
    "simple",
    "danish",
    "dutch",
    "finnish",
    "french",
    "german",
    "hungarian",
    "italian",
    "norwegian",
    "portuguese",
    "romanian",
    "russian",
    "spanish",
    "swedish",
    "turkish",
)


def _alembic_config(
    settings: Settings,
    model_spec: ModelSpec | None = None,
    storage: str | None = None,
    text_search: str | None = None,
):  # -> alembic.config.Config
    from alembic.config import Config

    from vstore.resources import alembic_dir

    config = Config()
    config.set_main_option("script_location", str(alembic_dir()))
    config.attributes["settings"] = settings
    if model_spec is not None:
        config.attributes["model_spec"] = model_spec
    if storage is not None:
        config.attributes["storage"] = storage
    if text_search is not None:
        config.attributes["text_search"] = text_search
    return config


def _revision_parents() -> dict[str, str | None]:
    """revision -> down_revision, read from the revision files' `revision`/`down_revision` lines: importing
    Alembic and SQLAlchemy costs about half a second, which a search should not pay."""
    from vstore.resources import alembic_dir

    parent_of: dict[str, str | None] = {}
    for file in (alembic_dir() / "versions").glob("*.py"):
        text = file.read_text()
        revision = re.search(r"^revision\s*=\s*[\"']([^\"']+)[\"']", text, re.M)
        parent = re.search(r"^down_revision\s*=\s*[\"']([^\"']+)[\"']", text, re.M)
        if revision is not None:
            parent_of[revision.group(1)] = parent.group(1) if parent else None
    return parent_of


@cache
def head_revision() -> str:
    """The newest revision id. A branched history (not expected) falls back to Alembic's own answer."""
    parent_of = _revision_parents()
    heads = set(parent_of) - {parent for parent in parent_of.values() if parent}
    if len(heads) == 1:
        return heads.pop()
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(_alembic_config(Settings())).get_current_head())


def current_revision(conn: psycopg.Connection) -> str | None:
    exists = conn.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute("SELECT version_num FROM public.alembic_version").fetchone()
    return str(row[0]) if row else None


def read_model(conn: psycopg.Connection) -> ModelSpec | None:
    """The model recorded in the database, or None before `vstore init`."""
    exists = conn.execute("SELECT to_regclass('public.embedding_model') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute(
        "SELECT name, pretrained, dim, checkpoint_sha256, random_weights FROM public.embedding_model "
        "WHERE id = 1"
    ).fetchone()
    if row is None:
        return None
    from_random = bool(row[4]) and row[1] != RANDOM  # a checkpoint fine-tuned from random weights
    return ModelSpec(
        name=row[0], pretrained=row[1], dim=row[2], checkpoint_sha256=row[3], from_random=from_random
    )


def read_text_search(conn: psycopg.Connection) -> str | None:
    """The captions' full-text configuration, or None before revision 0006."""
    found = conn.execute(
        "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('public.embedding_model') "
        "AND attname = 'text_search' AND NOT attisdropped"
    ).fetchone()
    if found is None:
        return None
    row = conn.execute("SELECT text_search FROM public.embedding_model WHERE id = 1").fetchone()
    return str(row[0]) if row else None


def stored_vector_type(settings: Settings) -> str:
    """'vector' or 'halfvec': how this (migrated) database stores its image and caption vectors."""
    with connection(settings, autocommit=True, vector=False) as conn:
        return column_type(conn, "images")[0]


def _run_alembic(
    settings: Settings,
    action: str,
    revision: str,
    spec: ModelSpec | None = None,
    storage: str | None = None,
    text_search: str | None = None,
) -> None:
    from alembic import command
    from sqlalchemy.exc import DBAPIError

    config = _alembic_config(settings, spec, storage, text_search)
    try:
        getattr(command, action)(config, revision)
    except DBAPIError as exc:
        if isinstance(exc.orig, psycopg.errors.LockNotAvailable):
            raise _migration_blocked(settings, action, revision) from exc
        raise VstoreError(
            f"migration {action} to {revision} failed: {str(exc.orig).splitlines()[0]}"
        ) from exc
    except Exception as exc:  # alembic's CommandError for unknown revisions, etc.
        if type(exc).__name__ == "CommandError":
            raise VstoreError(
                f"alembic {action} {revision}: {exc}. `vstore db status` shows the revision."
            ) from exc
        raise


def _migration_blocked(settings: Settings, action: str, revision: str) -> LockTimeout:
    """The migration ran out of lock_timeout: name the sessions that hold the migration key or locks on
    vstore's tables (a migration's DDL waits for every transaction that read a table it changes)."""
    with connection(settings, autocommit=True, vector=False) as conn:
        pids = locks.advisory_holders(conn, locks.MIGRATIONS.key) + locks.schema_holders(conn)
        holders = locks.describe_sessions(conn, pids) or "sessions that have ended since"
        return LockTimeout(
            f"migration {action} to {revision} waited {settings.lock_timeout:g} s for locks held by "
            f"{holders}. Let them finish or end them, then retry (VSTORE_LOCK_TIMEOUT sets the wait)."
        )


def upgrade(
    settings: Settings,
    revision: str = HEAD,
    spec: ModelSpec | None = None,
    storage: str | None = None,
    text_search: str | None = None,
) -> str:
    """Migrate to `revision`. A new database is created for `spec` (default: settings' model or ViT-B-32),
    `storage` (default vector) and `text_search` (the full-text configuration, default english); an
    existing one keeps its storage, and the configuration once revision 0006 has run."""
    with connection(settings, autocommit=True, vector=False) as conn:
        ensure_pgvector(conn)
        recorded = read_model(conn)
    if recorded is None:
        # The model is about to be recorded for good: refuse weights this machine cannot get.
        from vstore.encode.weights import check_weights_available

        if spec is None:
            spec = resolve_spec(settings.model or DEFAULT_MODEL, settings.pretrained or DEFAULT_PRETRAINED)
        check_weights_available(spec)
    _run_alembic(settings, "upgrade", revision, spec, storage, text_search)
    with connection(settings, autocommit=True, vector=False) as conn:
        return current_revision(conn) or "base"


def downgrade(settings: Settings, revision: str) -> str:
    _run_alembic(settings, "downgrade", revision)
    with connection(settings, autocommit=True, vector=False) as conn:
        return current_revision(conn) or "base"


def _revision_chain() -> list[str]:
    """Revision ids from the first to head."""
    parent_of = _revision_parents()
    chain: list[str] = []
    current: str | None = head_revision()
    while current is not None and current in parent_of:
        chain.append(current)
        current = parent_of[current]
    return chain[::-1]


def downgrade_drops_data(settings: Settings, revision: str) -> bool:
    """Whether `vstore db downgrade REVISION` would drop the tables (it reaches base from a migrated
    database). Targets it cannot place (partial ids, branches) count as dropping: the caller then asks."""
    with connection(settings, autocommit=True, vector=False) as conn:
        current = current_revision(conn)
    chain = _revision_chain()
    if current is None:
        return False
    if current not in chain:
        return True
    here = chain.index(current) + 1  # base is 0
    if revision == "base":
        target = 0
    elif revision in chain:
        target = chain.index(revision) + 1
    elif re.fullmatch(r"-\d+", revision):
        target = here + int(revision)
    else:
        return True
    return target <= 0 < here


def check_same_model(recorded: ModelSpec, wanted: ModelSpec) -> None:
    same = (
        recorded.name == wanted.name
        and recorded.dim == wanted.dim
        and (
            recorded.pretrained == wanted.pretrained
            or (
                recorded.checkpoint_sha256 is not None
                and recorded.checkpoint_sha256 == wanted.checkpoint_sha256
            )
        )
    )
    if not same:
        raise ModelMismatch(
            f"this database holds {recorded.label} vectors (dim {recorded.dim}); {wanted.label} "
            f"(dim {wanted.dim}) was asked for. Vectors of different models are not comparable: drop "
            "--model/--pretrained (and VSTORE_MODEL/VSTORE_PRETRAINED) to use the recorded model, or start "
            "a new database (another VSTORE_HOME or VSTORE_DATABASE_URL, or `vstore db downgrade base`)."
        )


def init(
    settings: Settings,
    model: str | None = None,
    pretrained: str | None = None,
    storage: str | None = None,
    text_search: str | None = None,
) -> ModelSpec:
    """Create (or confirm) the schema for a model and a storage (vector, the default, or halfvec) and
    return the model the database records. `text_search` is the full-text configuration of the captions
    (TEXT_SEARCH_CONFIGS, default english), fixed at creation like the storage.

    Idempotent for the same model and storage; refuses another one (ModelMismatch, ConfigError).
    Serialised by an advisory lock: of two first uses at once, the second waits, then finds the first's
    model recorded and behaves as a later command would: it uses that model, or refuses when it explicitly
    asked for another one. So nothing is ever encoded with a model the database does not record."""
    if storage is not None and storage not in STORAGE_TYPES:
        raise ConfigError(f"unknown storage {storage!r}; choose vector or halfvec.")
    if text_search is not None and text_search not in TEXT_SEARCH_CONFIGS:
        raise ConfigError(
            f"unknown text search configuration {text_search!r}; "
            f"choose one of {', '.join(TEXT_SEARCH_CONFIGS)}."
        )
    name = model or settings.model
    tag = pretrained or settings.pretrained
    with connection(settings, autocommit=True, vector=False) as conn:
        recorded = read_model(conn)
        if recorded is not None and current_revision(conn) == head_revision():
            # Migrated and recorded: nothing to create, so no lock to take (its advisory key may be held
            # by any role; a reader holding it must not stop every later init).
            _confirm(conn, recorded, name, tag, storage, text_search)
            return recorded
        locks.take_advisory(conn, locks.INIT, transaction=False)
        try:
            ensure_pgvector(conn)
            recorded = read_model(conn)
            if recorded is None:
                wanted = resolve_spec(name or DEFAULT_MODEL, tag or DEFAULT_PRETRAINED)
                upgrade(settings, HEAD, wanted, storage, text_search)
            else:
                _confirm(conn, recorded, name, tag, storage, text_search)
                upgrade(settings, HEAD, text_search=text_search)
            final = read_model(conn)
        finally:
            locks.release_advisory(conn, locks.INIT)
    assert final is not None
    return final


def _confirm(
    conn: psycopg.Connection,
    recorded: ModelSpec,
    name: str | None,
    tag: str | None,
    storage: str | None,
    text_search: str | None,
) -> None:
    """Refuse an explicitly asked model, storage or text search configuration that differs from what the
    database records."""
    if name or tag:
        check_asked_model(recorded, name, tag)
    recorded_storage = column_type(conn, "images")[0]
    if storage is not None and storage != recorded_storage:
        raise ConfigError(
            f"this database stores its vectors as {recorded_storage}, not {storage}; drop "
            "--storage to keep it, or start a new database (another VSTORE_HOME) to use the "
            "other storage."
        )
    recorded_search = read_text_search(conn)
    if text_search is not None and recorded_search not in (None, text_search):
        raise ConfigError(
            f"this database searches caption words with the {recorded_search!r} configuration, "
            f"not {text_search!r}; drop --text-search to keep it, or start a new database."
        )


@dataclass(frozen=True)
class SchemaState:
    revision: str | None
    head: str
    model: ModelSpec | None

    @property
    def current(self) -> bool:
        return self.revision == self.head


def schema_state(settings: Settings) -> SchemaState:
    with connection(settings, autocommit=True, vector=False) as conn:
        return SchemaState(revision=current_revision(conn), head=head_revision(), model=read_model(conn))


def checked_model(conn: psycopg.Connection) -> ModelSpec:
    """The database's model, after checking the schema is at head (SchemaNotReady says what to run)."""
    model = read_model(conn)
    if model is None:
        raise SchemaNotReady("this database is empty. Run `vstore init` (or `vstore ingest DIR`) first.")
    revision, head = current_revision(conn), head_revision()
    if revision != head:
        raise SchemaNotReady(
            f"the database schema is at revision {revision}, this vstore needs {head}. "
            "Run `vstore db upgrade`."
        )
    return model


def require_model(settings: Settings) -> ModelSpec:
    """The database's model; SchemaNotReady when the database is empty or not migrated to head."""
    with connection(settings, autocommit=True, vector=False) as conn:
        return checked_model(conn)


def resolve_model(settings: Settings) -> ModelSpec:
    """The model to encode with: the database's, refusing a different --model/--pretrained."""
    recorded = require_model(settings)
    if settings.model or settings.pretrained:
        check_asked_model(recorded, settings.model, settings.pretrained)
    return recorded


def check_asked_model(recorded: ModelSpec, name: str | None, tag: str | None) -> None:
    """Refuse an asked model (--model/--pretrained, VSTORE_MODEL/VSTORE_PRETRAINED) other than the recorded
    one. An ask that names the recorded model is settled without importing open_clip or torch (an
    unchanged re-run stays a fraction of a second); anything else is resolved and compared in full."""
    name, tag = name or recorded.name, tag or recorded.pretrained
    if not surely_same_model(recorded, name, tag):
        check_same_model(recorded, resolve_spec(name, tag))
