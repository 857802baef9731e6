"""`vstore reembed`: the explicit model switch. Every image and caption gets a vector from the new model,
written in committed batches to shadow tables (revision 0005) while search keeps using the old vectors;
then ONE transaction swaps them in together with the model record (changing the columns' dimension when
the new model's differs) and clears the text cache, whose vectors belong to the old model; then the
vector indexes are rebuilt.

Crash safety: the model being switched to is recorded first (reembed_run), each batch commits, so a
killed run loses at most one batch and the re-run continues where it stopped. The swap is atomic. The
indexes are dropped inside the swap and recorded in deferred_indexes in the same transaction, so a crash
before the rebuild leaves them for the re-run (or the next ingest, or `vstore index status`) to rebuild.
Rows an ingest added or changed meanwhile are (re)encoded under the swap's table lock, before the swap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql as pgsql

from vstore.config import Settings
from vstore.db import locks
from vstore.db.connect import connection, scalar
from vstore.db.indexes import VECTOR_TABLES, column_type, defer_indexes, rebuild_deferred
from vstore.db.migrations import require_model
from vstore.db.sql import load
from vstore.encode.encoder import RANDOM, Encoder, ModelSpec, load_encoder, resolve_spec
from vstore.encode.images import prepare_file
from vstore.encode.paths import filesystem_path
from vstore.errors import ConfigError, ModelMismatch, VstoreError

EMBEDDING_TABLES = ("images", "captions", "text_queries")  # fixed: never user text


@dataclass(frozen=True)
class ReembedProgress:
    phase: str  # "images", "captions", "swap", "indexes"
    done: int
    total: int


@dataclass
class ReembedReport:
    old_model: dict[str, Any]
    new_model: dict[str, Any]
    images: int = 0  # searchable images with a new vector
    captions: int = 0
    images_encoded: int = 0  # by this run (the rest were done by an interrupted run before)
    captions_encoded: int = 0
    unreadable: list[tuple[int, str]] = field(default_factory=list)  # (image id, reason): no vector now
    vectors_cleared: int = 0  # images not searchable (failed/missing) whose old vector was dropped
    text_cache_cleared: int = 0
    discarded_switch: str | None = None  # an unfinished switch to another model, abandoned
    dim_changed: bool = False
    indexes_rebuilt: list[str] = field(default_factory=list)
    already_switched: bool = False
    load_s: float = 0.0  # loading the new model
    encode_s: float = 0.0  # reading, encoding and writing the new vectors
    swap_s: float = 0.0
    index_s: float = 0.0
    wall_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[ReembedProgress], None]


def target_spec(recorded: ModelSpec, pretrained: str, model: str | None) -> ModelSpec:
    """The model to switch to: a checkpoint file (or a `vstore finetune` directory), a tag, or random."""
    from vstore.train.checkpoint import checkpoint_file

    path = Path(pretrained).expanduser()
    if pretrained != RANDOM and (path.is_dir() or path.is_file() or path.suffix in (".pt", ".bin")):
        checkpoint = checkpoint_file(path)
        spec = resolve_spec(model or recorded.name, str(checkpoint))
        return replace(spec, from_random=_fine_tuned_from_random(checkpoint))
    return resolve_spec(model or recorded.name, pretrained)


def _fine_tuned_from_random(checkpoint: Path) -> bool:
    """A `vstore finetune` checkpoint whose run started from random weights (its recipe.json says so): the
    lineage keeps the random-weights warning."""
    from vstore.train.checkpoint import RECIPE_FILE, read_json

    recipe = checkpoint.parent / RECIPE_FILE
    if not recipe.is_file():
        return False
    started = read_json(recipe).get("model", {})
    return started.get("pretrained") == RANDOM or bool(started.get("from_random"))


def _same(a: ModelSpec, b: ModelSpec) -> bool:
    """The same switch (the lineage flag is derived from the checkpoint, so it is not compared)."""
    keys = ("name", "pretrained", "dim", "checkpoint_sha256")
    return all(getattr(a, key) == getattr(b, key) for key in keys)


def _recorded_run(conn: psycopg.Connection) -> ModelSpec | None:
    row = conn.execute("SELECT name, pretrained, dim, checkpoint_sha256 FROM public.reembed_run").fetchone()
    return ModelSpec(name=row[0], pretrained=row[1], dim=row[2], checkpoint_sha256=row[3]) if row else None


def _start_run(conn: psycopg.Connection, new: ModelSpec, report: ReembedReport) -> None:
    """Record the switch, or continue the one recorded for the same model; one for another model is
    abandoned (its shadow rows only, never live data)."""
    with conn.transaction():
        under_way = _recorded_run(conn)
        if under_way is not None and _same(under_way, new):
            return
        if under_way is not None:
            report.discarded_switch = under_way.label
        conn.execute("DELETE FROM public.reembed_run")
        # DELETE, not TRUNCATE: row locks only, so no open transaction on these tables (any role can hold
        # one, see docs/access.md) delays the start; the tables are empty unless a switch was abandoned.
        conn.execute("DELETE FROM public.reembed_images")
        conn.execute("DELETE FROM public.reembed_captions")
        conn.execute(
            "INSERT INTO public.reembed_run (id, name, pretrained, checkpoint_sha256, dim) "
            "VALUES (1, %s, %s, %s, %s)",
            (new.name, new.pretrained, new.checkpoint_sha256, new.dim),
        )


def _encode_images(
    conn: psycopg.Connection,
    encoder: Encoder,
    settings: Settings,
    report: ReembedReport,
    say: Progress,
) -> int:
    todo = conn.execute(load("queries/reembed_todo_images")).fetchall()
    transform = encoder.image_transform()
    batch = settings.batch_size
    for start in range(0, len(todo), batch):
        rows = todo[start : start + batch]
        pixels, good, bad = [], [], []
        for image_id, root, path, content_hash in rows:
            try:
                pixels.append(prepare_file(filesystem_path(root, path), transform))
                good.append((image_id, content_hash))
            except VstoreError as exc:  # gone or unreadable since its ingest: no vector from the new model
                bad.append((image_id, content_hash))
                report.unreadable.append((int(image_id), str(exc)))
        vectors = encoder.encode_images(np.stack(pixels)) if pixels else np.zeros((0, encoder.dim))
        with conn.transaction():
            with conn.cursor() as cur:
                cur.executemany(
                    load("queries/reembed_put_image"),
                    [(i, h, v) for (i, h), v in zip(good, vectors, strict=True)]
                    + [(i, h, None) for i, h in bad],
                )
        report.images_encoded += len(rows)
        say(ReembedProgress("images", start + len(rows), len(todo)))
        settings.pause_point("reembed.images", report.images_encoded)  # test-only: crash tests stop here
    return len(todo)


def _encode_captions(
    conn: psycopg.Connection, encoder: Encoder, batch: int, report: ReembedReport, say: Progress
) -> int:
    todo = conn.execute(load("queries/reembed_todo_captions")).fetchall()
    for start in range(0, len(todo), batch):
        rows = todo[start : start + batch]
        vectors = encoder.encode_texts([text for _, text in rows])
        with conn.transaction():
            with conn.cursor() as cur:
                cur.executemany(
                    load("queries/reembed_put_caption"),
                    [(i, text, v) for (i, text), v in zip(rows, vectors, strict=True)],
                )
        report.captions_encoded += len(rows)
        say(ReembedProgress("captions", start + len(rows), len(todo)))
    return len(todo)


def _swap(conn: psycopg.Connection, new: ModelSpec, old: ModelSpec, report: ReembedReport) -> None:
    """Inside the caller's transaction, with the tables locked against writes."""
    # DROP INDEX, TRUNCATE and ALTER TABLE wait for every open transaction that read these tables (the
    # reader's too): bounded, and the message names those sessions.
    locks.lock_tables_for_ddl(
        conn, (*EMBEDDING_TABLES, "reembed_images", "reembed_captions"), "swapping in the new model's vectors"
    )
    for table in VECTOR_TABLES:
        defer_indexes(conn, table)  # a savepoint here: committed with the swap, or not at all
    report.text_cache_cleared = int(scalar(conn, "SELECT count(*) FROM public.text_queries"))
    conn.execute("TRUNCATE public.text_queries")
    if new.dim != old.dim:
        report.dim_changed = True
        for table in EMBEDDING_TABLES:
            name = pgsql.Identifier(table)
            # images/captions keep their storage (vector or halfvec); the text cache is always vector
            storage = column_type(conn, table)[0] if table in VECTOR_TABLES else "vector"
            conn.execute(
                pgsql.SQL("ALTER TABLE public.{} ALTER COLUMN embedding TYPE {}({}) USING NULL").format(
                    name, pgsql.Identifier(storage), pgsql.Literal(int(new.dim))
                )
            )
            conn.execute(
                pgsql.SQL("ALTER TABLE public.{} ALTER COLUMN embedding SET STORAGE PLAIN").format(name)
            )
    report.images = conn.execute(
        "UPDATE public.images i SET embedding = r.embedding FROM public.reembed_images r "
        "WHERE r.id = i.id AND r.embedding IS NOT NULL"
    ).rowcount
    report.vectors_cleared = conn.execute(
        "UPDATE public.images i SET embedding = NULL WHERE i.embedding IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM public.reembed_images r WHERE r.id = i.id AND r.embedding IS NOT NULL)"
    ).rowcount
    report.captions = conn.execute(
        "UPDATE public.captions c SET embedding = r.embedding FROM public.reembed_captions r "
        "WHERE r.id = c.id"
    ).rowcount
    conn.execute(
        "UPDATE public.embedding_model SET name = %s, pretrained = %s, checkpoint_sha256 = %s, dim = %s, "
        "random_weights = %s, created_at = now() WHERE id = 1",
        (new.name, new.pretrained, new.checkpoint_sha256, new.dim, new.random_weights),
    )
    conn.execute("DELETE FROM public.reembed_run")
    conn.execute("TRUNCATE public.reembed_images, public.reembed_captions")


def reembed(
    settings: Settings,
    pretrained: str,
    model: str | None = None,
    *,
    encoder: Encoder | None = None,
    progress: Progress | None = None,
) -> ReembedReport:
    """Switch the database to another model (see the module doc). Resumable; refuses a second switch
    running at the same time."""
    started = time.perf_counter()
    say = progress or (lambda _event: None)
    old = require_model(settings)
    new = target_spec(old, pretrained, model)
    report = ReembedReport(old_model=asdict(old), new_model=asdict(new))
    # autocommit: every `conn.transaction()` below is a real transaction (each batch commits)
    with (
        connection(settings, autocommit=True) as conn,
        locks.holding_row(conn, locks.REEMBED, wait=False) as switch,
    ):
        if not switch.held:
            raise VstoreError(
                f"another `vstore reembed` is running on this database ({switch.holders()}); "
                "wait for it to finish."
            )
        if _same(old, new):
            if _recorded_run(conn) is None:  # switched already; a crash may have left the indexes
                report.already_switched = True
                report.indexes_rebuilt = rebuild_deferred(conn)
                report.wall_s = time.perf_counter() - started
                return report
            raise ConfigError(f"the database already holds {new.label} vectors; nothing to switch.")
        _start_run(conn, new, report)
        encoder = encoder or load_encoder(new, device=settings.device, threads=settings.threads)
        report.load_s = time.perf_counter() - started
        if encoder.dim != new.dim:
            raise ModelMismatch(f"the encoder gives {encoder.dim}-d vectors; {new.label} is {new.dim}-d.")
        batch = settings.batch_size
        _encode_images(conn, encoder, settings, report, say)
        _encode_captions(conn, encoder, batch, report, say)
        report.encode_s = time.perf_counter() - started - report.load_s

        swap_started = time.perf_counter()
        say(ReembedProgress("swap", 0, 1))
        with conn.transaction():
            # Writers wait from here to the commit; readers go on with the old vectors until the
            # indexes are dropped, then wait for the commit too.
            conn.execute(
                "LOCK TABLE public.images, public.captions, public.text_queries IN SHARE ROW EXCLUSIVE MODE"
            )
            _encode_images(conn, encoder, settings, report, say)  # what an ingest wrote meanwhile
            _encode_captions(conn, encoder, batch, report, say)
            _swap(conn, new, old, report)
        report.swap_s = time.perf_counter() - swap_started
        say(ReembedProgress("indexes", 0, 1))
        index_started = time.perf_counter()
        report.indexes_rebuilt = rebuild_deferred(conn)
        report.index_s = time.perf_counter() - index_started
    report.wall_s = time.perf_counter() - started
    return report


def pending(settings: Settings) -> dict[str, Any] | None:
    """The switch under way, if any: target model and how far it got (for `vstore reembed --status`)."""
    with connection(settings) as conn:
        run = _recorded_run(conn)
        if run is None:
            return None
        counts: Sequence[int] = [
            int(
                scalar(
                    conn, pgsql.SQL("SELECT count(*) FROM public.{}").format(pgsql.Identifier(f"reembed_{t}"))
                )
            )
            for t in VECTOR_TABLES
        ]
    return {"model": asdict(run), "images_done": counts[0], "captions_done": counts[1]}
