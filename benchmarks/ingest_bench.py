"""Ingest benchmark (not a test): model-only vs end-to-end images/s, write share, binary COPY vs row-by-row
INSERT, HNSW insert-as-you-go vs drop+rebuild, peak RSS. Run from the repository root against a scratch
database (it deletes image rows, and refuses a database holding datasets it did not create unless --force):

    export VSTORE_HOME=/tmp/vsbench-ingest
    vstore init --model ViT-B-32 --pretrained random
    python -m benchmarks.ingest_bench throughput --images 192 --repeats 3
    python -m benchmarks.ingest_bench copy --rows 2000
    python -m benchmarks.ingest_bench hnsw --rows 10000 20000
    python -m benchmarks.ingest_bench rss --images 1000 10000   # tiny model, its own databases
    python -m benchmarks.ingest_bench encoder --images 240 --rerun-images 1000 --threads-study

Prints one JSON object per measurement (medians over repeats). Generated images live under /tmp.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vstore.config import Settings


def _emit(**values: object) -> None:
    print(json.dumps(values), flush=True)


def _generate(folder: Path, n: int, size: tuple[int, int], seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    base = rng.integers(0, 256, size=(size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    for i in range(n):
        path = folder / f"{i // 1000:03d}" / f"{seed:02d}_{i:07d}.jpg"
        if path.exists():
            continue
        path.parent.mkdir(exist_ok=True)
        # smooth colour fields (JPEG-friendly, photo-like size), different per image
        tile = np.roll(base, i, axis=(0, 1)) ^ np.uint8(i % 251)
        Image.fromarray(tile).resize(size, Image.Resampling.BILINEAR).save(path, "JPEG", quality=85)
    return folder


BENCH_DATA = Path(tempfile.gettempdir())  # generated folders: BENCH_DATA / "vsbench-images-*"
FORCE = False  # --force: run even beside datasets the benchmark did not create


def _is_ours(name: str, root: str, fmt: str) -> bool:
    return name.startswith("bench-") or Path(root).name.startswith("vsbench-images-")


def _clear(settings: Settings) -> None:
    """Delete every image row: only in a database that holds nothing but the benchmark's own datasets."""
    from vstore.bench.guard import refuse_user_data
    from vstore.db.connect import connection

    with connection(settings, autocommit=True) as conn:
        refuse_user_data(conn, _is_ours, force=FORCE)
        conn.execute("DELETE FROM public.images")


def throughput(settings: Settings, images: int, repeats: int) -> None:
    """Model-only images/s (preprocessed tensors straight into the model) vs end-to-end ingest images/s
    at the same batch size and torch threads, and the write stage's share of the ingest time."""
    from vstore.encode.encoder import load_encoder
    from vstore.ingest.pipeline import ingest, prepare_model

    spec = prepare_model(settings)
    encoder = load_encoder(spec, device=settings.device, threads=settings.threads)
    size = getattr(getattr(encoder.image_transform(), "transforms", [None])[0], "size", 224)
    side = size if isinstance(size, int) else max(size)
    batch = settings.batch_size
    pixels = np.random.default_rng(0).standard_normal((batch, 3, side, side)).astype(np.float32)
    encoder.encode_images(pixels)  # warm-up
    folder = _generate(Path(tempfile.gettempdir()) / "vsbench-images-640", images, (640, 480))
    model_rates, e2e_rates, write_shares, waits = [], [], [], []
    for _ in range(repeats):
        started = time.perf_counter()
        done = 0
        while done < images:
            encoder.encode_images(pixels)
            done += batch
        model_rates.append(done / (time.perf_counter() - started))
        _clear(settings)
        report = ingest(settings, folder, dataset="bench-throughput", encoder=encoder)
        seconds = report.wall_s - report.setup_s - report.model_load_s
        e2e_rates.append(report.images_encoded / seconds)
        write_shares.append(report.write_s / seconds)
        waits.append(report.decode_wait_s / seconds)
    model, e2e = statistics.median(model_rates), statistics.median(e2e_rates)
    _emit(
        measure="throughput",
        model=spec.label,
        device=encoder.device,
        batch_size=batch,
        images=images,
        repeats=repeats,
        workers=settings.workers,
        model_only_images_per_s=round(model, 2),
        ingest_images_per_s=round(e2e, 2),
        ratio=round(e2e / model, 3),
        write_share=round(statistics.median(write_shares), 4),
        model_waited_share=round(statistics.median(waits), 4),
        model_only_runs=[round(r, 2) for r in model_rates],
        ingest_runs=[round(r, 2) for r in e2e_rates],
    )


def copy_vs_insert(settings: Settings, rows: int) -> None:
    """Rows/s into images (vector indexes deferred during the test, so both measure the write path):
    the ingest's binary COPY + upsert vs one INSERT ... ON CONFLICT per row, committed every 64 rows
    (as the ingest does) and in one transaction (the per-row cost alone)."""
    from vstore.db.connect import connection
    from vstore.db.indexes import defer_indexes, rebuild_deferred
    from vstore.db.migrations import require_model
    from vstore.ingest.writer import ImageRow, Writer

    dim = require_model(settings).dim
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((rows, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sql = (
        "INSERT INTO public.images (dataset_id, path, content_hash, size, mtime, width, height, "
        "status, embedding) VALUES (%s, %s, %s, 1000, 1.0, 640, 480, 'ok', %s) "
        "ON CONFLICT (dataset_id, path) DO UPDATE SET embedding = EXCLUDED.embedding"
    )
    _clear(settings)
    with connection(settings, autocommit=True) as conn:
        defer_indexes(conn, "images")
        try:
            writer = Writer(conn)  # same session settings as an ingest (synchronous_commit off)
            dataset_id = writer.open_dataset("bench-copy", "/tmp", "folder").id
            for per_commit in (64, rows):
                started = time.perf_counter()
                for start in range(0, rows, per_commit):
                    batch = [
                        ImageRow(
                            split=None,
                            path=f"copy/{i}.jpg",
                            source_id=None,
                            label=None,
                            content_hash=f"{i:064x}",
                            size=1000,
                            mtime=1.0,
                            width=640,
                            height=480,
                            embedding=vectors[i],
                        )
                        for i in range(start, min(rows, start + per_commit))
                    ]
                    writer.write_batch(dataset_id, batch, [])
                copy_s = time.perf_counter() - started
                started = time.perf_counter()
                for start in range(0, rows, per_commit):
                    with conn.transaction():
                        for i in range(start, min(rows, start + per_commit)):
                            conn.execute(sql, (dataset_id, f"insert/{i}.jpg", f"{i:064x}", vectors[i]))
                insert_s = time.perf_counter() - started
                _clear(settings)
                _emit(
                    measure="copy_vs_insert",
                    rows=rows,
                    dim=dim,
                    rows_per_commit=per_commit,
                    copy_rows_per_s=round(rows / copy_s),
                    insert_rows_per_s=round(rows / insert_s),
                    ratio=round(insert_s / copy_s, 1),
                )
        finally:
            _clear(settings)
            rebuild_deferred(conn)


def hnsw(settings: Settings, sizes: list[int], dim: int = 512) -> None:
    """Loading n vectors into a table with an HNSW index (batches of 64, committed, as an ingest does)
    vs loading with no index and building it afterwards (parallel maintenance workers)."""
    from vstore.db.connect import connection, scalar

    rng = np.random.default_rng(2)
    for n in sizes:
        vectors = rng.standard_normal((n, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        timings = {}
        with connection(settings, autocommit=True) as conn:
            for mode in ("insert", "rebuild"):
                conn.execute("DROP TABLE IF EXISTS public.vstore_bench_hnsw")
                conn.execute(f"CREATE TABLE public.vstore_bench_hnsw (id bigint, embedding vector({dim}))")
                conn.execute("ALTER TABLE public.vstore_bench_hnsw ALTER COLUMN embedding SET STORAGE PLAIN")
                index = (
                    "CREATE INDEX ON public.vstore_bench_hnsw USING hnsw (embedding vector_cosine_ops) "
                    "WITH (m = 16, ef_construction = 64)"
                )
                started = time.perf_counter()
                if mode == "insert":
                    conn.execute(index)
                for start in range(0, n, 64):
                    with conn.transaction():
                        with conn.cursor().copy(
                            "COPY public.vstore_bench_hnsw (id, embedding) FROM STDIN WITH (FORMAT BINARY)"
                        ) as copy:
                            copy.set_types(["int8", "vector"])
                            for i in range(start, min(n, start + 64)):
                                copy.write_row((i, vectors[i]))
                if mode == "rebuild":
                    conn.execute(index)
                    conn.execute("ANALYZE public.vstore_bench_hnsw")
                timings[mode] = time.perf_counter() - started
            workers = scalar(conn, "SHOW max_parallel_maintenance_workers")
            conn.execute("DROP TABLE IF EXISTS public.vstore_bench_hnsw")
        _emit(
            measure="hnsw_load",
            rows=n,
            dim=dim,
            insert_as_you_go_s=round(timings["insert"], 2),
            load_then_build_s=round(timings["rebuild"], 2),
            speedup=round(timings["insert"] / timings["rebuild"], 2),
            max_parallel_maintenance_workers=workers,
        )


def rss(sizes: list[int]) -> None:
    """Peak RSS of the ingest process (and of its decode workers) at each size, with the tiny model
    (32x32 input) in a fresh embedded database each: a flat figure means memory does not grow with n."""
    for n in sizes:
        folder = _generate(Path(tempfile.gettempdir()) / "vsbench-images-160", n, (160, 120))
        with tempfile.TemporaryDirectory(prefix="vsbench-rss-") as home:
            code = (
                "import resource, json, sys\n"
                "from vstore.config import Settings\nfrom vstore.ingest import ingest\n"
                "from pathlib import Path\n"
                f"s = Settings(home=Path({home!r}), model='vstore-tiny', pretrained='random', "
                "batch_size=64, workers=1)\n"
                f"r = ingest(s, {str(folder)!r})\n"
                "me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
                "kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
                "from vstore import embedded; embedded.stop(s)\n"
                "print(json.dumps({'added': r.added, 'main_kib': me, 'worker_kib': kids, "
                "'wall_s': r.wall_s}))\n"
            )
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
        _emit(
            measure="peak_rss",
            model="vstore-tiny/random",
            images=n,
            added=result["added"],
            main_peak_mib=round(result["main_kib"] / 1024, 1),
            worker_peak_mib=round(result["worker_kib"] / 1024, 1),
            wall_s=round(result["wall_s"], 1),
        )


def encoder(
    settings: Settings, images: int, captions: int, rerun_images: int, repeats: int, parts: list[str]
) -> None:
    """Issue 12's four figures (benchmarks/encoder_speed.py does the work); `parts` picks which. With
    --threads-study the whole ingest also runs with inline decoding and with one torch thread. Every
    line carries the load average, since the machine these were measured on was shared."""
    import os

    from benchmarks import encoder_speed as es
    from vstore.encode.encoder import OpenClipEncoder
    from vstore.ingest.pipeline import prepare_model

    spec = prepare_model(settings)
    batch = settings.batch_size
    env = es.bench_env()
    folder, texts = es.make_coco_folder(BENCH_DATA / f"vsbench-images-coco-{images}", images)
    runs = []
    if "ingest" in parts:
        for label, extra, threads in THREAD_CONFIGS[: len(THREAD_CONFIGS) if THREADS_STUDY else 1]:
            _clear(settings)
            run_env = {**env, "VSTORE_THREADS": str(threads)} if threads else env
            wall, report = es.cli_ingest(folder, "bench-coco", run_env, *extra)
            runs.append(
                {
                    "config": label,
                    "wall_s": round(wall, 2),
                    "model_load_s": round(report["model_load_s"], 2),
                    "cpu_s": round(report["cpu_s"], 1),
                    "encode_s": round(report["encode_s"], 2),
                    "decode_wait_s": round(report["decode_wait_s"], 2),
                    "images": report["images_encoded"],
                    "captions": report["captions_added"],
                    "load_average": os.getloadavg(),
                }
            )
    model = None
    if {"ingest", "captions", "query"} & set(parts):
        model = OpenClipEncoder(spec, device=settings.device, threads=settings.threads)
    if "ingest" in parts:
        model_only = es.model_only_full_context_s(model, images, texts, batch)
        _emit(
            measure="ingest_vs_model_only",
            model=spec.label,
            device=settings.device,
            batch_size=batch,
            images=images,
            captions=len(texts),
            cpus=os.cpu_count(),
            model_only_full_context=model_only,
            ingest=runs,
            ratio=round(runs[0]["wall_s"] / model_only["total_s"], 3),
            goal="<= 0.6",
            load_average=os.getloadavg(),
        )
    if "captions" in parts:
        _emit(
            measure="caption_encoding",
            model=spec.label,
            goal="speedup >= 3",
            **es.captions_per_s(model, texts[:captions], batch, repeats),
            load_average=os.getloadavg(),
        )
    if "query" in parts:
        _emit(
            measure="query_encode",
            model=spec.label,
            goal="padding_free_p50_ms <= 30",
            **es.query_latency_ms(model, "a dog on a skateboard", max(20, 10 * repeats)),
            load_average=os.getloadavg(),
        )
    del model
    if "rerun" in parts:
        big = _generate(BENCH_DATA / "vsbench-images-640", rerun_images, (640, 480))
        _clear(settings)
        first, _ = es.cli_ingest(big, "bench-rerun", env)
        again = [es.cli_ingest(big, "bench-rerun", env) for _ in range(repeats)]
        _emit(
            measure="unchanged_rerun",
            model=spec.label,
            images=rerun_images,
            first_ingest_s=round(first, 1),
            rerun_wall_s=[round(w, 2) for w, _ in again],
            rerun_p50_s=round(statistics.median(w for w, _ in again), 2),
            in_process_s=[round(r["wall_s"], 2) for _, r in again],
            process_cpu_s=[round(r["cpu_s"], 2) for _, r in again],
            model_loaded=[r["model_loaded"] for _, r in again],
            unchanged=again[0][1]["unchanged"],
            goal="< 2 s",
            load_average=os.getloadavg(),
        )


ENCODER_PARTS = ["ingest", "captions", "query", "rerun"]
# whole-ingest configurations for --threads-study: (label, extra CLI options, VSTORE_THREADS or None)
THREAD_CONFIGS: list[tuple[str, tuple[str, ...], int | None]] = [
    ("default", (), None),
    ("inline-decode", ("--workers", "0"), None),
    ("one-torch-thread", ("--workers", "1"), 1),
]
THREADS_STUDY = False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ingest_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--images", type=int, default=192)
    t.add_argument("--repeats", type=int, default=3)
    c = sub.add_parser("copy")
    c.add_argument("--rows", type=int, default=2000)
    h = sub.add_parser("hnsw")
    h.add_argument("--rows", type=int, nargs="+", default=[10_000, 20_000])
    r = sub.add_parser("rss")
    r.add_argument("--images", type=int, nargs="+", default=[1000, 10_000])
    e = sub.add_parser("encoder")
    e.add_argument("--images", type=int, default=240)
    e.add_argument("--captions", type=int, default=256, help="captions timed for captions/s")
    e.add_argument("--rerun-images", type=int, default=1000)
    e.add_argument("--repeats", type=int, default=3)
    e.add_argument("--threads-study", action="store_true", help="also ingest with other thread settings")
    e.add_argument("--parts", nargs="+", choices=ENCODER_PARTS, default=ENCODER_PARTS)
    parser.add_argument("--force", action="store_true", help="run beside datasets it did not create")
    args = parser.parse_args(argv)
    global FORCE, THREADS_STUDY
    FORCE = args.force
    THREADS_STUDY = getattr(args, "threads_study", False)
    settings = Settings.from_env()
    if args.what == "throughput":
        throughput(settings, args.images, args.repeats)
    elif args.what == "copy":
        copy_vs_insert(settings, args.rows)
    elif args.what == "hnsw":
        hnsw(settings, args.rows)
    elif args.what == "encoder":
        encoder(settings, args.images, args.captions, args.rerun_images, args.repeats, args.parts)
    else:
        rss(args.images)


if __name__ == "__main__":
    from vstore.errors import VstoreError

    try:
        main()
    except VstoreError as exc:
        sys.exit(f"Error: {exc}")
