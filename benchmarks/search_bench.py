"""Search benchmark (not a test): SQL HNSW latency through one connection with a prepared statement, recall@k
of HNSW against an exact scan at a few ef_search values, the Store's filtered search, and `vstore search`
wall time with the model-load time measured separately in the same run.

    VSTORE_HOME=/tmp/vsbench-search vstore init --model ViT-B-32 --pretrained random
    VSTORE_HOME=/tmp/vsbench-search python -m benchmarks.search_bench --rows 100000 --json > bench.json

Figures and their reading are in docs/search.md. The synthetic rows come from vstore.bench.synth.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import psycopg

from vstore.config import Settings
from vstore.db.connect import connect, scalar, vector_array

PLAIN_KNN = "SELECT id FROM public.images ORDER BY embedding <=> %b LIMIT %b"  # %b: binary parameters
DEFAULT_EF = (10, 20, 40, 64, 100, 200)


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p95_ms: float
    mean_ms: float
    n: int

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        ms = np.asarray(seconds) * 1000.0
        return cls(float(np.percentile(ms, 50)), float(np.percentile(ms, 95)), float(ms.mean()), len(ms))

    @classmethod
    def of_ms(cls, ms: list[float]) -> Latency:
        return cls.of([m / 1000.0 for m in ms])


@dataclass(frozen=True)
class EfPoint:
    ef_search: int
    recall: float  # mean recall@k against the exact scan
    latency: Latency


@dataclass
class SearchBenchReport:
    rows: int
    dim: int
    k: int
    queries: int
    load: dict[str, float] = field(default_factory=dict)  # seconds_copy, seconds_index (when loaded here)
    exact: Latency | None = None
    ef_sweep: list[EfPoint] = field(default_factory=list)
    store_default: Latency | None = None  # Store.search_vector: joins, filters, knobs, result objects
    filtered: dict[str, Any] = field(default_factory=dict)  # split='val' (5% of rows)
    cli: dict[str, float] = field(default_factory=dict)


def _queries(conn: psycopg.Connection, n: int, seed: int) -> np.ndarray:
    """Query vectors near stored ones (a stored vector plus noise): realistic neighbourhoods, not copies."""
    from vstore.bench.synth import _unit

    conn.execute("SELECT setseed(%s)", (0.5 + seed / 1e6,))  # the same query rows in every run
    rows = conn.execute(
        "SELECT embedding FROM public.images WHERE embedding IS NOT NULL ORDER BY random() LIMIT %s", (n,)
    ).fetchall()
    stored = np.stack([vector_array(r[0]) for r in rows])
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(stored.shape).astype(np.float32) * (0.3 / np.sqrt(stored.shape[1]))
    return _unit(stored + noise).astype(np.float32)


def _timed_ids(conn: psycopg.Connection, sql: str, q: np.ndarray, k: int) -> tuple[float, list[int]]:
    started = time.perf_counter()
    rows = conn.execute(sql, (q, k), prepare=True).fetchall()
    return time.perf_counter() - started, [r[0] for r in rows]


def _exact_ids(conn: psycopg.Connection, queries: np.ndarray, k: int) -> tuple[Latency, list[list[int]]]:
    times, truth = [], []
    for q in queries:
        with conn.transaction():
            conn.execute("SET LOCAL enable_indexscan = off")
            conn.execute("SET LOCAL enable_bitmapscan = off")
            seconds, ids = _timed_ids(conn, PLAIN_KNN, q, k)
        times.append(seconds)
        truth.append(ids)
    return Latency.of(times), truth


def _recall(found: list[list[int]], truth: list[list[int]], k: int) -> float:
    return float(np.mean([len(set(f) & set(t[:k])) / k for f, t in zip(found, truth, strict=True)]))


def _sweep(
    conn: psycopg.Connection, queries: np.ndarray, truth: list[list[int]], k: int, efs
) -> list[EfPoint]:
    points = []
    for ef in efs:
        conn.execute(f"SET hnsw.ef_search = {int(ef)}")
        for q in queries[:20]:  # warm the prepared statement and the index pages
            _timed_ids(conn, PLAIN_KNN, q, k)
        times, found = [], []
        for q in queries:
            seconds, ids = _timed_ids(conn, PLAIN_KNN, q, k)
            times.append(seconds)
            found.append(ids)
        points.append(EfPoint(int(ef), _recall(found, truth, k), Latency.of(times)))
    conn.execute("RESET hnsw.ef_search")
    return points


def _store_runs(settings: Settings, queries: np.ndarray, k: int) -> tuple[Latency, dict[str, Any]]:
    from vstore.search.store import Store

    with Store(settings) as store:
        for q in queries[:20]:
            store.search_vector(q, k=k)
        times = []
        for q in queries:
            started = time.perf_counter()
            store.search_vector(q, k=k)
            times.append(time.perf_counter() - started)
        filtered_times, recalls, counts = [], [], []
        for q in queries[:50]:
            started = time.perf_counter()
            hits = store.search_vector(q, k=k, split="val")
            filtered_times.append(time.perf_counter() - started)
            exact = store.search_vector(q, k=k, split="val", exact=True)
            counts.append(len(hits))
            recalls.append(len({h.id for h in hits} & {h.id for h in exact}) / max(1, len(exact)))
    filtered = {
        "filter": "split='val' (5% of rows)",
        "min_rows_returned": int(min(counts)),
        "recall": float(np.mean(recalls)),
        "latency": asdict(Latency.of(filtered_times)),
    }
    return Latency.of(times), filtered


_CLI_PROBE = """
import json, sys, time
started = time.perf_counter()
import vstore.encode.encoder as encoder
loads = []
original = encoder.load_encoder
cpu = []
encodes = []
def timed_load(*args, **kwargs):
    t, c = time.perf_counter(), time.process_time()
    try:
        model = original(*args, **kwargs)
    finally:
        loads.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    encode_texts = model.encode_texts
    def timed_encode(texts):
        t = time.perf_counter()
        try:
            return encode_texts(texts)
        finally:
            encodes.append(time.perf_counter() - t)
    model.encode_texts = timed_encode
    return model
encoder.load_encoder = timed_load
from vstore.cli import main
code = main(sys.argv[1:])
probe = {"code": code, "model_load_s": sum(loads), "model_load_cpu_s": sum(cpu), "encode_s": sum(encodes),
         "in_process_s": time.perf_counter() - started}
sys.stderr.write("PROBE " + json.dumps(probe) + "\\n")
"""


def _cli_run(args: list[str]) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CLI_PROBE, *args], capture_output=True, text=True, env=os.environ
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    probe = next((line for line in done.stderr.splitlines() if line.startswith("PROBE ")), None)
    if probe is None or done.returncode != 0:
        raise RuntimeError(f"vstore {' '.join(args)} failed: {done.stderr[-2000:]}")
    result = json.loads(probe[6:])
    if result["code"] != 0:
        raise RuntimeError(f"vstore {' '.join(args)} exited {result['code']}: {done.stderr[-2000:]}")
    return {
        "wall_s": wall,
        "cpu_s": cpu,  # user + sys of the whole process: robust to other load on a shared machine
        "model_load_s": result["model_load_s"],
        "model_load_cpu_s": result["model_load_cpu_s"],
        "encode_s": result["encode_s"],  # the text encoder's first forward pass
        "in_process_s": result["in_process_s"],  # from the first vstore import to main()'s return
    }


def _cli(repeats: int) -> dict[str, float]:
    """`vstore search TEXT` in fresh processes: new texts (model load + encode + query) and a cached text."""
    new = [
        _cli_run(["search", f"a dog on a skateboard {time.time_ns()}", "-k", "10", "--json"])
        for _ in range(repeats)
    ]
    cached_text = "a dog on a skateboard"
    _cli_run(["search", cached_text, "-k", "10", "--json"])  # make sure it is cached
    cached = [_cli_run(["search", cached_text, "-k", "10", "--json"]) for _ in range(repeats)]
    median = lambda values: float(np.median(values))  # noqa: E731
    return {
        "new_text_wall_s": median([r["wall_s"] for r in new]),
        "model_load_s": median([r["model_load_s"] for r in new]),
        "new_text_wall_minus_model_load_s": median([r["wall_s"] - r["model_load_s"] for r in new]),
        "new_text_encode_s": median([r["encode_s"] for r in new]),
        "new_text_in_process_minus_model_load_s": median(
            [r["in_process_s"] - r["model_load_s"] for r in new]
        ),
        "new_text_interpreter_exit_s": median([r["wall_s"] - r["in_process_s"] for r in new]),
        "new_text_cpu_s": median([r["cpu_s"] for r in new]),
        "model_load_cpu_s": median([r["model_load_cpu_s"] for r in new]),
        "new_text_cpu_minus_model_load_s": median([r["cpu_s"] - r["model_load_cpu_s"] for r in new]),
        "cached_text_wall_s": median([r["wall_s"] for r in cached]),
        "cached_text_cpu_s": median([r["cpu_s"] for r in cached]),
        "repeats": repeats,
    }


def run(
    settings: Settings,
    *,
    rows: int = 100_000,
    queries: int = 200,
    k: int = 10,
    load: bool = True,
    ef_values: tuple[int, ...] = DEFAULT_EF,
    cli_repeats: int = 3,
    seed: int = 0,
) -> SearchBenchReport:
    from vstore.bench.synth import load_synthetic
    from vstore.db.migrations import require_model

    model = require_model(settings)
    report = SearchBenchReport(rows=rows, dim=model.dim, k=k, queries=queries)
    if load:
        synth = load_synthetic(settings, rows, dataset="bench", captions_per_image=0, seed=seed)
        report.load = {"seconds_copy": synth.seconds_copy, "seconds_index": synth.seconds_index}
    with connect(settings, autocommit=True) as conn:
        report.rows = int(scalar(conn, "SELECT count(*) FROM public.images"))
        query_vectors = _queries(conn, queries, seed)
        report.exact, truth = _exact_ids(conn, query_vectors, k)
        report.ef_sweep = _sweep(conn, query_vectors, truth, k, ef_values)
    report.store_default, report.filtered = _store_runs(settings, query_vectors, k)
    if cli_repeats:
        report.cli = _cli(cli_repeats)
    return report


def summary(report: SearchBenchReport) -> str:
    lines = [
        f"{report.rows} rows x {report.dim}-d, k={report.k}, {report.queries} queries",
        f"exact scan: p50 {report.exact.p50_ms:.1f} ms, p95 {report.exact.p95_ms:.1f} ms"
        if report.exact
        else "",
        "ef_search  recall@k  p50 ms  p95 ms",
    ]
    for point in report.ef_sweep:
        latency = point.latency
        lines.append(
            f"{point.ef_search:>9}  {point.recall:8.3f}  {latency.p50_ms:6.2f}  {latency.p95_ms:6.2f}"
        )
    if report.store_default:
        lines.append(f"Store.search_vector (default ef): p50 {report.store_default.p50_ms:.2f} ms")
    if report.filtered:
        lines.append(f"filtered {report.filtered['filter']}: {report.filtered}")
    if report.cli:
        lines.append(f"CLI: {report.cli}")
    return "\n".join(line for line in lines if line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.search_bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rows", type=int, default=100_000, help="synthetic images to load (default 100000)")
    parser.add_argument("--queries", type=int, default=200, help="query vectors (default 200)")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--no-load", action="store_true", help="reuse the rows already in the database")
    parser.add_argument(
        "--cli-repeats", type=int, default=3, help="fresh `vstore search` processes (0 = skip)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    args = parser.parse_args(argv)
    report = run(
        Settings.from_env(),
        rows=args.rows,
        queries=args.queries,
        k=args.k,
        load=not args.no_load,
        cli_repeats=args.cli_repeats,
    )
    sys.stderr.write(summary(report) + "\n")
    if args.json:
        sys.stdout.write(json.dumps(asdict(report)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
