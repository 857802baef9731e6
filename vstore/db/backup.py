"""Physical backups of the embedded server (`vstore db backup` / `vstore db restore`).

A backup is a folder: `pgdata/` written by pg_basebackup (plain format, WAL streamed alongside, so it is
consistent while ingest and search keep running, with PostgreSQL's own `backup_manifest` of per-file
SHA-256 checksums), then `vstore-backup.json`, written last: a backup without it is partial. Restore
checks both (pg_verifybackup, and the manifest's hash of `backup_manifest`) before it writes anything,
copies into a new folder beside the target and renames it into place, so a refused or failed restore
leaves the target as it was. It never replaces a home whose server runs.

Row counts in the manifest are taken just before the backup starts: every one of those rows was
committed before the backup's checkpoint, so a restore must hold at least as many (rows committed while
the copy ran are in it too, up to the backup's end point).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg import sql

from vstore.config import Settings
from vstore.db import pgtools
from vstore.db.connect import connection
from vstore.errors import ConfigError, VstoreError

MANIFEST = "vstore-backup.json"
FORMAT = "vstore-backup/1"
LAST_BACKUP = "last-backup.json"  # in VSTORE_HOME: what `vstore db status` reports
COUNTED = ("datasets", "images", "captions", "text_queries")


class BackupRefused(VstoreError):
    """A backup folder that is damaged, partial or not a vstore backup; or a target that must not be
    replaced."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    created_at: str
    seconds: float
    bytes: int
    rows: dict[str, int]
    revision: str | None
    model: str | None
    server_version: str
    vstore_version: str
    home_files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RestoreReport:
    home: Path
    seconds: float
    rows: dict[str, int]
    replaced: Path | None  # where the previous data folder was moved, when one was replaced


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _home_files(settings: Settings) -> list[Path]:
    """Files of VSTORE_HOME a restored home needs beside its data: the roles' passwords (0600), which
    match the password hashes inside the copied catalog."""
    from vstore.db.auth import passfile

    return [passfile(settings.home)]


def _contents(settings: Settings) -> dict[str, Any]:
    """Revision, model and row counts of the vstore database, as far as it has them."""
    from importlib.metadata import version

    from vstore.db.migrations import current_revision, read_model

    with connection(settings, autocommit=True, vector=False) as conn:
        found: dict[str, Any] = {
            "vstore_version": version("vstore"),
            "server_version": str(conn.execute("SHOW server_version").fetchone()[0]),  # type: ignore[index]
            "revision": current_revision(conn),
            "model": None,
            "rows": {},
        }
        model = read_model(conn)
        if model is not None:
            found["model"] = model.label
            for table in COUNTED:
                query = sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(table))
                found["rows"][table] = int(conn.execute(query).fetchone()[0])  # type: ignore[index]
    return found


def _empty_target(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ConfigError(f"{path} exists and is not an empty folder; give a new folder for the backup.")


def backup(settings: Settings, target: Path) -> BackupReport:
    """Take a consistent physical backup of the embedded server into `target` (a new or empty folder)."""
    pgtools.require_embedded(settings, "vstore db backup")
    target = target.expanduser().resolve()
    _empty_target(target)
    from vstore.db import embedded

    url = embedded.start(settings)
    contents = _contents(settings)
    started = time.monotonic()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    target.mkdir(parents=True, exist_ok=True)
    conninfo, env = pgtools.split_password(url)
    pgtools.run(
        "pg_basebackup",
        [
            "-d",
            conninfo,
            "-D",
            str(target / "pgdata"),
            "-X",
            "stream",
            "-c",
            "fast",
            "--manifest-checksums=SHA256",
            "-l",
            f"vstore backup {created}",
        ],
        what=f"backup into {target}",
        env=env,
    )
    copied = []
    for source in _home_files(settings):
        if source.is_file():
            shutil.copy2(source, target / source.name)
            copied.append(source.name)
    report = BackupReport(
        path=target,
        created_at=created,
        seconds=round(time.monotonic() - started, 2),
        bytes=_tree_bytes(target),
        rows=contents["rows"],
        revision=contents["revision"],
        model=contents["model"],
        server_version=contents["server_version"],
        vstore_version=contents["vstore_version"],
        home_files=copied,
    )
    manifest = {"format": FORMAT, **_jsonable(report)}
    manifest["backup_manifest_sha256"] = _sha256(target / "pgdata" / "backup_manifest")
    manifest["home_files_sha256"] = {name: _sha256(target / name) for name in copied}
    _write_json(target / MANIFEST, manifest)
    _write_json(settings.home / LAST_BACKUP, _jsonable(report))
    return report


def _jsonable(report: BackupReport) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(report).items()}


def _write_json(path: Path, value: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(partial, path)


def last_backup(settings: Settings) -> dict[str, Any] | None:
    try:
        return dict(json.loads((settings.home / LAST_BACKUP).read_text()))
    except (OSError, ValueError):
        return None


def verify(source: Path) -> dict[str, Any]:
    """The backup's vstore manifest, once the backup has been checked whole; BackupRefused otherwise."""
    source = source.expanduser().resolve()
    manifest_path = source / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
    except OSError:
        raise BackupRefused(
            f"{source} is not a complete vstore backup ({MANIFEST} is missing: the backup did not finish "
            "or this is another folder); nothing was restored."
        ) from None
    except ValueError:
        raise BackupRefused(f"{manifest_path} is damaged (not JSON); nothing was restored.") from None
    if manifest.get("format") != FORMAT:
        raise BackupRefused(
            f"{source} was written by another vstore ({manifest.get('format')}); "
            "restore it with that version."
        )
    pg_manifest = source / "pgdata" / "backup_manifest"
    if not pg_manifest.is_file() or _sha256(pg_manifest) != manifest.get("backup_manifest_sha256"):
        raise BackupRefused(f"{source}: backup_manifest is missing or altered; nothing was restored.")
    for name, digest in manifest.get("home_files_sha256", {}).items():
        if not (source / name).is_file() or _sha256(source / name) != digest:
            raise BackupRefused(f"{source}: {name} is missing or altered; nothing was restored.")
    try:
        pgtools.run("pg_verifybackup", ["-q", str(source / "pgdata")], what="verify")
    except VstoreError as exc:
        raise BackupRefused(f"{source} is damaged ({exc}); nothing was restored.") from None
    return dict(manifest)


def restore(
    settings: Settings, source: Path, *, home: Path | None = None, yes: bool = False
) -> RestoreReport:
    """Restore a backup into `home` (default: the current VSTORE_HOME). A home that already has data is
    replaced only with `yes` and only while its server is stopped; its old data folder is kept beside it."""
    from vstore.db import embedded

    started = time.monotonic()
    manifest = verify(source)
    source = source.expanduser().resolve()
    target = replace(settings, home=(home or settings.home).expanduser().resolve(), database_url=None)
    pgdata = target.pgdata
    if (pgdata / "PG_VERSION").exists():
        if not yes:
            raise BackupRefused(
                f"{target.home} already holds a database; add --yes to replace it (its data folder is kept "
                f"as {pgdata.name}.replaced-...), or restore into a new home with --home."
            )
        if embedded.status(target).running:
            raise BackupRefused(
                f"the server of {target.home} is running; stop it first (VSTORE_HOME={target.home} "
                "vstore db stop), then restore. Nothing was changed."
            )
    target.home.mkdir(parents=True, exist_ok=True)
    staging = target.home / f"pg.restoring-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        pgtools.copy_tree(source / "pgdata", staging)
        staging.chmod(0o700)
        pgtools.hand_to_server(staging, pgtools.server_os_user(pgdata))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replaced = None
    if pgdata.exists():
        replaced = pgdata.with_name(f"{pgdata.name}.replaced-{datetime.now():%Y%m%d-%H%M%S}")
        os.rename(pgdata, replaced)
    os.rename(staging, pgdata)
    for name in manifest.get("home_files", []):
        shutil.copy2(source / name, target.home / name)
    embedded.start(target)  # replays the WAL the backup carries
    rows = _contents(target)["rows"]
    embedded.stop(target)
    short = {t: n for t, n in manifest.get("rows", {}).items() if rows.get(t, 0) < n}
    if short:
        raise BackupRefused(
            f"the restored database in {target.home} has fewer rows than the backup "
            f"recorded ({short}); keep the backup and report this."
        )
    return RestoreReport(
        home=target.home, seconds=round(time.monotonic() - started, 2), rows=rows, replaced=replaced
    )
