"""Operations figures for docs/operate.md (not a test), side by side in one run, on a home this script
creates in a temp folder (and deletes): it never touches another database.

1. replica replay lag while `rows` synthetic images load into the primary (sampled every 0.25 s from the
   primary's pg_stat_replication: max and p95 seconds and bytes);
2. `vstore db backup` and `vstore db restore --home` time and size at that size;
3. `vstore ingest` of 60 images (ViT-B-32 random weights) alone, then beside a backup (the slowdown);
4. search QPS, 8 client threads for `seconds` each: all on the primary, then half on one replica;
5. first query after a restart (OS page cache dropped): cold, then prewarmed (pg_prewarm autoprewarm),
   against the warm p50; where the server has no pg_prewarm, only cold.

    python -m benchmarks.operate --rows 100000 --json > /tmp/operate.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from vstore.bench.synth import load_synthetic
from vstore.config import Settings
from vstore.db import backup, embedded, insights, replicas
from vstore.db.connect import connection
from vstore.db.migrations import init

KNN = "SELECT id FROM images ORDER BY embedding <=> %s LIMIT 10"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message} (load {os.getloadavg()[0]:.1f})", file=sys.stderr)


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95)) if values else 0.0


def replica_lag_during_load(settings: Settings, rows: int) -> dict[str, Any]:
    replicas.add(settings, "bench")
    primary = embedded.start(settings)
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        with psycopg.connect(primary, autocommit=True) as conn:
            while not done.is_set():
                row = conn.execute(replicas.PRIMARY_LAG_QUERY, ("bench",)).fetchone()
                if row is not None:
                    samples.append((row[1] if row[2] else 0.0, row[2] or 0))
                time.sleep(0.25)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    report = load_synthetic(settings, rows, profile="clip", captions_per_image=1)
    load_s = time.perf_counter() - started
    caught = replicas.catch_up(settings, "bench", timeout_s=600)
    done.set()
    sampler.join()
    seconds = [s for s, _ in samples]
    behind = [b for _, b in samples]
    return {
        "rows": rows,
        "load_s": round(load_s, 1),
        "copy_s": round(report.seconds_copy, 1),
        "index_s": round(report.seconds_index, 1),
        "samples": len(samples),
        "lag_max_s": round(max(seconds, default=0), 2),
        "lag_p95_s": round(p95(seconds), 2),
        "behind_max_mb": round(max(behind, default=0) / 2**20, 1),
        "behind_p95_mb": round(p95([float(b) for b in behind]) / 2**20, 1),
        "catch_up_after_load_s": round(caught, 2),
    }


def backup_restore(settings: Settings, place: Path) -> dict[str, Any]:
    made = backup.backup(settings, place / "backup")
    restored = backup.restore(settings, place / "backup", home=place / "restored")
    shutil.rmtree(place / "restored")
    return {
        "backup_s": made.seconds,
        "backup_mb": round(made.bytes / 2**20, 1),
        "restore_s": restored.seconds,
    }


def _photos(folder: Path, count: int, first: int) -> Path:
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(first)
    for i in range(count):
        pixels = rng.integers(0, 255, size=(96, 128, 3), dtype=np.uint8)
        Image.fromarray(pixels, "RGB").save(folder / f"p{first + i:05d}.jpg", quality=85)
    return folder


def ingest_slowdown(settings: Settings, place: Path, images: int = 60) -> dict[str, Any]:
    """`vstore ingest` of a folder (ViT-B-32, random weights: the real model's cost) with the HNSW indexes
    in place, alone, then with a backup started at the same moment."""
    from vstore.encode.encoder import load_encoder
    from vstore.ingest.pipeline import ingest

    with connection(settings) as conn:
        from vstore.db.migrations import checked_model

        encoder = load_encoder(checked_model(conn), device="cpu")
    ingest(settings, _photos(place / "warm", 8, 900_000), encoder=encoder)  # the model's first calls
    started = time.perf_counter()
    ingest(settings, _photos(place / "alone", images, 0), encoder=encoder)
    alone = time.perf_counter() - started
    timing: dict[str, float] = {}

    def run_backup() -> None:
        began = time.perf_counter()
        backup.backup(settings, place / "backup-beside")
        timing["backup_s"] = time.perf_counter() - began

    folder = _photos(place / "beside", images, 100_000)
    worker = threading.Thread(target=run_backup)
    started = time.perf_counter()
    worker.start()
    ingest(settings, folder, encoder=encoder)
    beside = time.perf_counter() - started
    worker.join()
    shutil.rmtree(place / "backup-beside", ignore_errors=True)
    return {
        "images": images,
        "alone_s": round(alone, 1),
        "with_backup_s": round(beside, 1),
        "slowdown": round(beside / alone, 2),
        "backup_beside_s": round(timing.get("backup_s", 0), 1),
    }


def _queries(url: str, n: int = 200) -> list[np.ndarray]:
    from pgvector.psycopg import register_vector

    with psycopg.connect(url) as conn:
        register_vector(conn)
        rows = conn.execute("SELECT embedding FROM images ORDER BY random() LIMIT %s", (n,)).fetchall()
    return [
        np.asarray(r[0].to_numpy() if hasattr(r[0], "to_numpy") else r[0], dtype=np.float32) for r in rows
    ]


def qps(urls: list[str], queries: list[np.ndarray], clients: int, seconds: float) -> float:
    from pgvector.psycopg import register_vector

    counts = [0] * clients
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        with psycopg.connect(urls[i % len(urls)], autocommit=True) as conn:
            register_vector(conn)
            j = i
            while time.monotonic() < stop:
                conn.execute(KNN, (queries[j % len(queries)],)).fetchall()
                counts[i] += 1
                j += clients

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return round(sum(counts) / seconds, 1)


def search_qps(settings: Settings, seconds: float) -> dict[str, Any]:
    primary = embedded.start(settings)
    replica = replicas.replica(settings, "bench").url
    assert replica is not None
    queries = _queries(primary)
    qps([primary, replica], queries, 8, 3)  # warm both servers' caches
    return {
        "clients": 8,
        "seconds": seconds,
        "primary_alone_qps": qps([primary], queries, 8, seconds),
        "primary_plus_replica_qps": qps([primary, replica], queries, 8, seconds),
        "primary_alone_again_qps": qps([primary], queries, 8, seconds),
    }


def _first_query_ms(settings: Settings, query: np.ndarray) -> tuple[float, float]:
    from pgvector.psycopg import register_vector

    with connection(settings, autocommit=True) as conn:
        register_vector(conn)
        started = time.perf_counter()
        conn.execute(KNN, (query,)).fetchall()
        first = (time.perf_counter() - started) * 1000
        warm = []
        for _ in range(20):
            started = time.perf_counter()
            conn.execute(KNN, (query,)).fetchall()
            warm.append((time.perf_counter() - started) * 1000)
    return round(first, 2), round(statistics.median(warm), 2)


def _restart(settings: Settings, *, keep_prewarm: bool) -> None:
    embedded.stop(settings)
    if not keep_prewarm:
        (settings.pgdata / "autoprewarm.blocks").unlink(missing_ok=True)
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("1\n")  # root only: the OS page cache too
    embedded.start(settings)


def restart_latency(settings: Settings) -> dict[str, Any]:
    for name in replicas.names(settings):
        replicas.stop(settings, name)
    query = _queries(embedded.start(settings), 1)[0]
    result: dict[str, Any] = {}
    _restart(settings, keep_prewarm=False)
    result["cold_first_ms"], result["cold_warm_p50_ms"] = _first_query_ms(settings, query)
    try:
        insights.enable(settings)
        insights.prewarm(settings)
    except Exception as exc:  # noqa: BLE001 - a server without pg_prewarm: report cold only
        result["prewarmed"] = f"not measured: {exc}"
        return result
    _restart(settings, keep_prewarm=True)
    started = time.monotonic()
    cached = 0.0
    while cached < 0.99 and time.monotonic() - started < 120:
        found = {i["index"]: i for i in insights.insights(settings)["indexes"]}
        cached = found["images_embedding_hnsw"].get("cached", 0.0)
        time.sleep(0.2)
    result["autoprewarm_s"] = round(time.monotonic() - started, 2)
    result["prewarmed_first_ms"], result["prewarmed_warm_p50_ms"] = _first_query_ms(settings, query)
    _restart(settings, keep_prewarm=False)  # cold again, after prewarm was enabled (same config)
    result["cold_again_first_ms"], _ = _first_query_ms(settings, query)
    return result


def record(results: dict[str, Any], name: str, value: Any) -> None:
    results[name] = value
    print(json.dumps({name: value}), file=sys.stderr, flush=True)  # kept even if a later phase fails


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only-restart", action="store_true", help="Load the rows, then only step 5.")
    args = parser.parse_args()
    place = Path(tempfile.mkdtemp(prefix="vstore-operate-"))
    place.chmod(0o755)
    settings = Settings(home=place / "home", model="ViT-B-32", pretrained="random")
    results: dict[str, Any] = {"load_before": os.getloadavg()}
    try:
        init(settings)
        if args.only_restart:
            load_synthetic(settings, args.rows, profile="clip", captions_per_image=1)
            record(results, "restart", restart_latency(settings))
            return
        say("replica lag during the load")
        record(results, "replica_lag", replica_lag_during_load(settings, args.rows))
        say("backup and restore")
        record(results, "backup", backup_restore(settings, place))
        say("ingest alone and beside a backup")
        record(results, "ingest_slowdown", ingest_slowdown(settings, place))
        say("search QPS")
        record(results, "search", search_qps(settings, args.seconds))
        say("restart latency")
        record(results, "restart", restart_latency(settings))
        results["load_after"] = os.getloadavg()
    finally:
        for name in replicas.names(settings):
            replicas.stop(settings, name)
        embedded.stop(settings)
        shutil.rmtree(place, ignore_errors=True)
        print(json.dumps(results, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
