"""`vstore export`, `vstore faiss build|search`, `vstore compare`, `vstore bench synth`. Thin: one library
call each, rendered here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vstore.cli.app import app, info, print_json, settings, warn, warn_random_weights
from vstore.errors import ConfigError

faiss_app = typer.Typer(
    help="The Faiss side index: build it from an export or the database, search it.", no_args_is_help=True
)
app.add_typer(faiss_app, name="faiss")
bench_app = typer.Typer(
    help="Benchmark helpers: synthetic data at scale, embedding models.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout, nothing else.")]
TableOpt = Annotated[str, typer.Option("--table", help="Which vectors: images or captions.")]


@app.command()
def export(
    out_dir: Annotated[
        Path, typer.Argument(help="Directory to write the vectors, ids, metadata and manifest to.")
    ],
    format: Annotated[
        str, typer.Option("--format", help="npy (float32 arrays + CSV metadata) or parquet.")
    ] = "npy",
    table: Annotated[str, typer.Option("--table", help="images, captions or both.")] = "both",
    chunk_rows: Annotated[int, typer.Option(help="Rows held in memory at a time while streaming.")] = 8192,
    as_json: JsonOpt = False,
) -> None:
    """Stream vectors out of the database (binary COPY, constant memory) with their database ids and
    metadata: <table>.npy, <table>_ids.npy, <table>_meta.csv (or <table>.parquet) and manifest.json."""
    from vstore.compare.export import EXPORT_TABLES
    from vstore.compare.export import export as run_export

    if table not in (*EXPORT_TABLES, "both"):
        raise ConfigError(f"--table must be images, captions or both (got {table!r}).")
    tables = EXPORT_TABLES if table == "both" else (table,)
    report = run_export(
        settings(),
        out_dir,
        format=format,
        tables=tables,
        chunk_rows=chunk_rows,
        progress=lambda t, n: info(f"exported {n} {t}"),
    )
    if as_json:
        print_json({**report.__dict__, "counts": report.counts})
    else:
        info(
            f"{', '.join(f'{n} {t}' for t, n in report.counts.items())} ({report.model}, dim {report.dim}) "
            f"-> {report.out_dir} in {report.seconds:.1f}s"
        )


@faiss_app.command("build")
def faiss_build(
    type: Annotated[str, typer.Option("--type", help="flat (exact), ivf, hnsw or ivfpq.")] = "hnsw",
    table: TableOpt = "images",
    nlist: Annotated[
        int | None, typer.Option(help="IVF lists (default: rows/1000, as pgvector advises).")
    ] = None,
    m: Annotated[
        int | None, typer.Option("--m", help="HNSW M (default: the pgvector index's, else 16).")
    ] = None,
    ef_construction: Annotated[
        int | None, typer.Option(help="HNSW efConstruction (default: the pgvector index's, else 64).")
    ] = None,
    pq_m: Annotated[
        int | None, typer.Option(help="IVF-PQ sub-quantizers; must divide the dimension.")
    ] = None,
    from_export: Annotated[
        Path | None,
        typer.Option("--from", help="Build from this `vstore export` directory, not the database."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Index directory (default $VSTORE_HOME/faiss/TABLE-TYPE).")
    ] = None,
    threads: Annotated[int, typer.Option(help="Faiss build threads.")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Build a Faiss index over the stored vectors and save it with its id map and manifest."""
    from vstore.compare.side_index import build_side_index

    manifest = build_side_index(
        settings(),
        type,
        table=table,
        from_export=from_export,
        out_dir=out,
        m=m,
        ef_construction=ef_construction,
        nlist=nlist,
        pq_m=pq_m,
        threads=threads,
    )
    if as_json:
        print_json(manifest)
    else:
        info(
            f"faiss {manifest.type} {manifest.params} over {manifest.rows} {manifest.table} in "
            f"{manifest.build_s:.2f}s, {manifest.size_bytes / 1e6:.1f} MB -> {manifest.path}"
        )


@faiss_app.command("search")
def faiss_search(
    text: Annotated[str | None, typer.Argument(help="What to look for, in words.")] = None,
    image: Annotated[Path | None, typer.Option("--image", help="Query by an image file.")] = None,
    like: Annotated[int | None, typer.Option("--like", help="Query by a stored image's id.")] = None,
    k: Annotated[int, typer.Option("-k", help="How many results (1-1000).")] = 10,
    index: Annotated[
        Path | None, typer.Option("--index", help="Index directory (default: --type's).")
    ] = None,
    type: Annotated[
        str, typer.Option("--type", help="Which default index: flat, ivf, hnsw, ivfpq.")
    ] = "hnsw",
    table: TableOpt = "images",
    nprobe: Annotated[int | None, typer.Option(help="IVF lists to scan.")] = None,
    ef_search: Annotated[int | None, typer.Option(help="HNSW efSearch (default 40).")] = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Rebuild the index first when the database changed since.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Search a Faiss side index like `vstore search` does the database; answers are database ids.

    An index built from another database is refused; one built before the last changes (an ingest)
    is searched with a warning, or rebuilt first with --rebuild."""
    from vstore.compare.side_index import SideIndex, default_index_dir, describe_hits, rebuild_side_index
    from vstore.search.store import Store

    if sum(q is not None for q in (text, image, like)) != 1:
        raise ConfigError("give exactly one query: a TEXT argument, --image FILE or --like ID.")
    if not 1 <= k <= 1000:
        raise ConfigError("-k must be between 1 and 1000.")
    s = settings()
    side = SideIndex.load(index or default_index_dir(s, table, type))
    with Store(s) as store:
        model = store.model
        side.check_model(model.name, model.pretrained, model.dim)
        stale = side.check_database(s)  # raises ForeignIndex for another database's index
        if stale and rebuild:
            info(f"rebuilding the Faiss index at {side.manifest.path}: {stale}")
            side = rebuild_side_index(s, side)
        elif stale:
            warn(
                f"the Faiss index at {side.manifest.path} is stale: {stale}; its answers miss the changes. "
                "Pass --rebuild (or run `vstore faiss build`) to bring it up to date."
            )
        if model.random_weights:
            warn_random_weights(model.label)
        if text is not None:
            vector = store.embed_text([text])[0]
        elif image is not None:
            vector = store.encode_image(image)
        else:
            vector = store.image_vector(like)  # type: ignore[arg-type]
    exclude = like if side.manifest.table == "images" else None
    hits = side.search(vector, k, nprobe=nprobe, ef_search=ef_search, exclude_id=exclude)
    rows = describe_hits(s, side.manifest.table, hits)
    if as_json:
        for row in rows:
            print_json(row)
        return
    what_header = "path" if side.manifest.table == "images" else "caption"
    typer.echo(f"{'#':>3}  {'id':>10}  {'distance':>8}  {what_header}")
    for rank, row in enumerate(rows, start=1):
        what = row.get("path") or row.get("text") or "(no longer in the database)"
        typer.echo(f"{rank:>3}  {row['id']:>10}  {row['distance']:8.4f}  {what}")


@app.command()
def compare(
    k: Annotated[
        str,
        typer.Option(
            "-k",
            metavar="K[,K...]",
            help="Neighbours per query; recall is recall@k. Several (-k 1,5,10,50,100) measure each "
            "method at each k in one run, and --plot then draws p50 latency against k.",
        ),
    ] = "10",
    queries: Annotated[
        int, typer.Option(help="Query count: half captions (text->image), half held-out images.")
    ] = 200,
    seed: Annotated[int, typer.Option(help="Seed for the query sample.")] = 0,
    target: Annotated[str, typer.Option(help="Table searched: images or captions.")] = "images",
    methods: Annotated[
        list[str] | None,
        typer.Option(
            "--methods", help="Comma-separated subset, e.g. pgvector-hnsw,faiss-hnsw (default: all)."
        ),
    ] = None,
    ef_search: Annotated[str | None, typer.Option(help="HNSW sweep, e.g. 10,20,40,80,160,320.")] = None,
    probes: Annotated[
        str | None, typer.Option(help="IVF sweep (probes / nprobe), e.g. 1,2,4,8,16,32.")
    ] = None,
    rerank: Annotated[
        str | None,
        typer.Option(help="pgvector-bq sweep: Hamming candidates re-ranked exactly, e.g. 10,40,160,640."),
    ] = None,
    nlist: Annotated[int | None, typer.Option(help="IVF lists for pgvector IVFFlat and Faiss IVF.")] = None,
    m: Annotated[int | None, typer.Option("--m", help="HNSW M (default: the pgvector index's).")] = None,
    ef_construction: Annotated[
        int | None, typer.Option(help="HNSW efConstruction (default: pgvector's).")
    ] = None,
    metric: Annotated[
        str,
        typer.Option(
            help="Distance: cosine (<=>), ip (<#>) or l2 (<->), with a pgvector index of the matching "
            "operator class built for the run, and the same Faiss metric (ip for cosine)."
        ),
    ] = "cosine",
    threads: Annotated[int, typer.Option(help="Search threads for Faiss/numpy/sklearn (pgvector: 1).")] = 1,
    build_threads: Annotated[int, typer.Option(help="Processes/threads for index builds, both engines.")] = 2,
    repeats: Annotated[int, typer.Option(help="Timed passes over the queries; latencies are medians.")] = 3,
    keep_ivfflat: Annotated[
        bool, typer.Option(help="Keep a pgvector IVFFlat index built for the run.")
    ] = False,
    rebuild_hnsw: Annotated[
        bool, typer.Option(help="Rebuild pgvector's HNSW index to time its build (else build_s is empty).")
    ] = False,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the rows (a JSON list) here.")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(help="Write a PNG here: recall against QPS, or p50 latency against k for several -k."),
    ] = None,
) -> None:
    """pgvector (exact, HNSW, IVFFlat, binary-quantised HNSW + re-rank) against Faiss (Flat, IVF, HNSW,
    IVF-PQ) and sklearn on the same
    queries: recall@k, latency percentiles, QPS, build time and size per method and setting."""
    from vstore.compare.base import EF_SWEEP, PROBE_SWEEP, RERANK_SWEEP, BuildOptions
    from vstore.compare.harness import compare as run_compare
    from vstore.compare.harness import format_table
    from vstore.db.indexes import check_metric

    options = BuildOptions(
        m=m,
        ef_construction=ef_construction,
        nlist=nlist,
        threads=threads,
        build_threads=build_threads,
        keep_ivfflat=keep_ivfflat,
        rebuild_hnsw=rebuild_hnsw,
        metric=check_metric(metric),
        ef_sweep=_ints(ef_search, "--ef-search") or EF_SWEEP,
        probe_sweep=_ints(probes, "--probes") or PROBE_SWEEP,
        rerank_sweep=_ints(rerank, "--rerank") or RERANK_SWEEP,
    )
    ks = _ints(k, "-k") or (10,)
    report = run_compare(
        settings(),
        k=ks,
        queries=queries,
        seed=seed,
        target=target,
        methods=methods,
        options=options,
        repeats=repeats,
        progress=info,
    )
    typer.echo(format_table(report.rows))
    info(
        f"{report.meta['rows']} {target}, {report.meta['queries']} queries {report.meta['query_kinds']}, "
        f"k={k}, metric {metric}, {threads} search thread(s) on {report.meta['cpu_count']} cores"
    )
    if json_file:
        json_file.write_text(json.dumps(report.to_json(), indent=1) + "\n")
        meta_file = json_file.with_suffix(".meta.json")
        meta_file.write_text(json.dumps(report.meta, indent=1) + "\n")
        info(f"rows -> {json_file}, machine and run details -> {meta_file}")
    if plot:
        from vstore.compare.plots import plot_latency_k, plot_recall_qps

        title = f"{report.meta['rows']} {target}, k={k}"
        if len(ks) > 1:
            plot_latency_k(report.rows, plot, title=title)
        else:
            plot_recall_qps(report.rows, plot, title=title)
        info(f"plot -> {plot}")


def _ints(text: str | None, option: str) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        values = tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise ConfigError(f"{option} takes comma-separated whole numbers, e.g. 10,20,40.") from None
    if not values or min(values) < 1:
        raise ConfigError(f"{option} values must be at least 1.")
    return values


@bench_app.command("synth")
def bench_synth(
    rows: Annotated[int, typer.Option("--rows", help="Images to generate (each with its captions).")],
    dim: Annotated[
        int | None, typer.Option(help="Vector dimension; must equal the database model's.")
    ] = None,
    profile: Annotated[
        str,
        typer.Option(
            help="clusters: unit vectors around spread-out centres; clip: CLIP-like (modality gap, "
            "low intrinsic dimension, uneven clusters), see docs/benchmarks.md."
        ),
    ] = "clusters",
    captions_per_image: Annotated[
        int | None, typer.Option(help="Captions per image (default 1 for clusters, 5 for clip).")
    ] = None,
    caption_sample: Annotated[
        int | None,
        typer.Option(help="Caption only this many images, evenly spaced (query material at scale)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same vectors).")] = 0,
    dataset: Annotated[
        str, typer.Option(help="Dataset name (an earlier one of that name is replaced).")
    ] = "synth",
    force: Annotated[
        bool, typer.Option("--force", help="Load even into a database that holds real datasets.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fill a scratch dataset with synthetic normalised vectors for benchmarks when no real data is at
    hand: clustered (--profile clusters) or CLIP-like (--profile clip). Indexes are rebuilt after the
    load; the report gives the copy and index-build seconds."""
    from vstore.bench.synth import load_synthetic

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "indexes" or done == total:
            info(f"{stage}: {done}/{total}")

    report = load_synthetic(
        settings(),
        rows,
        dataset=dataset,
        captions_per_image=captions_per_image,
        caption_sample=caption_sample,
        profile=profile,
        seed=seed,
        dim=dim,
        progress=progress,
        force=force,
    )
    if as_json:
        print_json({**report.__dict__, "rows_per_second": report.rows_per_second})
    else:
        info(
            f"{report.images} images + {report.captions} captions ({report.dim}-d) in dataset "
            f"{report.dataset!r}: copy {report.seconds_copy:.1f}s, indexes {report.seconds_index:.1f}s"
        )


@bench_app.command("storage")
def bench_storage(
    queries: Annotated[int, typer.Option(help="Query vectors (sampled from the images).")] = 20,
    k: Annotated[int, typer.Option("-k", help="Neighbours per query.")] = 10,
    repeats: Annotated[int, typer.Option(help="Timed passes; latencies are medians.")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Exact-scan latency with the embedding stored PLAIN, EXTENDED (PostgreSQL's default: TOASTed) or
    as halfvec, on scratch copies of the images' vectors (dropped after)."""
    from vstore.bench.storage import storage_effect

    rows = storage_effect(settings(), queries=queries, k=k, repeats=repeats)
    if as_json:
        print_json([row.__dict__ for row in rows])
        return
    typer.echo("variant   heap_MB  toast_MB  p50_ms  server_ms")
    for row in rows:
        typer.echo(
            f"{row.variant:<9} {row.heap_bytes / 1e6:>7.1f} {row.toast_bytes / 1e6:>9.1f} "
            f"{row.p50_ms:>7.2f} {row.server_ms:>10.2f}"
        )
