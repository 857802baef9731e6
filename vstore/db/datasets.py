"""Datasets: which row a source belongs to, and what each dataset holds (`vstore datasets`).

A dataset is identified by its source: the resolved folder, or the manifest file. Never by its display
name alone: two folders called `photos` are two datasets (`photos`, `photos-2`), and ingesting one never
re-points the rows of the other. An explicit `--dataset NAME` that names another source's dataset is
refused, unless that source no longer exists on disk: then it is the same dataset, moved.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psycopg

from vstore.config import Settings
from vstore.db import locks
from vstore.db.connect import connection
from vstore.errors import DatasetConflict, NotFound

LIST_HINT = "`vstore datasets` lists them"


@dataclass(frozen=True)
class DatasetInfo:
    id: int
    name: str
    root: str  # the folder stored paths are relative to
    source: str  # what identifies it: the folder, or the manifest file
    format: str
    images: int  # present (status 'ok')
    captions: int  # of present images
    missing: int
    failed: int


@dataclass(frozen=True)
class OpenedDataset:
    id: int
    name: str
    created: bool  # this call inserted the row


def list_datasets(settings: Settings) -> list[DatasetInfo]:
    """Every dataset with its counts, by name."""
    with connection(settings, autocommit=True, vector=False) as conn:
        rows = conn.execute(
            """
            SELECT d.id, d.name, d.root, coalesce(d.source, d.root), d.format,
                   count(i.id) FILTER (WHERE i.status = 'ok'),
                   coalesce(sum(c.n) FILTER (WHERE i.status = 'ok'), 0),
                   count(i.id) FILTER (WHERE i.status = 'missing'),
                   count(i.id) FILTER (WHERE i.status = 'failed')
            FROM public.datasets d
            LEFT JOIN public.images i ON i.dataset_id = d.id
            LEFT JOIN (SELECT image_id, count(*) AS n FROM public.captions GROUP BY image_id) c
                ON c.image_id = i.id
            GROUP BY d.id
            ORDER BY d.name
            """
        ).fetchall()
    return [DatasetInfo(*r[:5], *(int(n) for n in r[5:])) for r in rows]


def dataset_id(conn: psycopg.Connection, name: str | None) -> int | None:
    """The id of a dataset by display name (the --dataset filters); None for None."""
    if name is None:
        return None
    row = conn.execute("SELECT id FROM public.datasets WHERE name = %s", (name,)).fetchone()
    if row is None:
        raise NotFound(f"there is no dataset named {name!r}; {LIST_HINT}.")
    return int(row[0])


def _free_name(conn: psycopg.Connection, wanted: str) -> str:
    taken = {
        r[0]
        for r in conn.execute(
            "SELECT name FROM public.datasets WHERE name = %s OR name LIKE %s",
            (wanted, wanted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "-%"),
        ).fetchall()
    }
    if wanted not in taken:
        return wanted
    number = 2
    while f"{wanted}-{number}" in taken:
        number += 1
    return f"{wanted}-{number}"


def open_dataset(
    conn: psycopg.Connection, *, name: str, root: str, source: str, format: str, explicit: bool
) -> OpenedDataset:
    """The dataset row of `source` (created if new). `name` is the wanted display name; `explicit` when
    the user gave it (--dataset), which makes a clash an error instead of a numbered name."""
    with conn.transaction():
        locks.take_row(conn, locks.DATASETS)  # two ingests of same-named folders: one name each
        # Rows older than revision 0003 have no source: a folder's is its root; a manifest's is matched by
        # its folder and name (the key those rows were created under).
        mine = conn.execute(
            """
            SELECT id, name FROM public.datasets
            WHERE source = %(source)s
               OR (source IS NULL AND root = %(root)s AND (format <> 'manifest' OR name = %(name)s))
            ORDER BY (source IS NULL), (name = %(name)s) DESC, id
            LIMIT 1
            """,
            {"source": source, "root": root, "name": name},
        ).fetchone()
        named = conn.execute(
            "SELECT id, coalesce(source, root) FROM public.datasets WHERE name = %s", (name,)
        ).fetchone()
        if mine is not None:
            if explicit and mine[1] != name:
                raise DatasetConflict(
                    f"{source} is already the dataset {mine[1]!r}; ingest it again with --dataset {mine[1]} "
                    f"or without --dataset ({LIST_HINT})."
                )
            _record_source(conn, int(mine[0]), source, root, format)
            return OpenedDataset(int(mine[0]), str(mine[1]), False)
        if explicit and named is not None:
            if os.path.exists(named[1]):
                raise DatasetConflict(
                    f"the dataset {name!r} is {named[1]}, not {source}; choose another --dataset name "
                    f"({LIST_HINT})."
                )
            # Its source is gone from disk: the same dataset, moved. Paths are relative, so rows carry over.
            _record_source(conn, int(named[0]), source, root, format)
            return OpenedDataset(int(named[0]), name, False)
        chosen = _free_name(conn, name)
        row = conn.execute(
            "INSERT INTO public.datasets (name, root, source, format) VALUES (%s, %s, %s, %s) RETURNING id",
            (chosen, root, source, format),
        ).fetchone()
        assert row is not None
        return OpenedDataset(int(row[0]), chosen, True)


def drop_if_empty(conn: psycopg.Connection, dataset: int) -> bool:
    """Remove a dataset row this ingest created when nothing was written to it (a source that failed)."""
    with conn.transaction():
        cursor = conn.execute(
            "DELETE FROM public.datasets d WHERE d.id = %s "
            "AND NOT EXISTS (SELECT 1 FROM public.images i WHERE i.dataset_id = d.id)",
            (dataset,),
        )
        return cursor.rowcount > 0


def _record_source(conn: psycopg.Connection, dataset_id: int, source: str, root: str, format: str) -> None:
    """Point an existing dataset at where its files are now (first ingest after 0003, or a moved folder)."""
    conn.execute(
        "UPDATE public.datasets SET source = %s, root = %s, format = %s WHERE id = %s",
        (source, root, format, dataset_id),
    )
