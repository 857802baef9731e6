"""`vstore compare`: pgvector against Faiss and sklearn on the same queries. Thin: one library call,
rendered by vstore.compare.report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vstore.cli.app import TARGET_METAVAR, app, info, print_json, settings
from vstore.compare.names import DEFAULT_METHODS, METHOD_NAMES
from vstore.errors import ConfigError


@app.command()
def compare(
    k: Annotated[
        str,
        typer.Option(
            "-k",
            "--k",
            metavar="K[,K...]",
            help="Neighbours per query; recall is recall@k. Several (-k 1,5,10,50,100) measure each "
            "method at each k in one run, and --plot then draws p50 latency against k.",
        ),
    ] = "10",
    queries: Annotated[
        int,
        typer.Option(
            metavar="N",
            help="Query count: half captions (text->image), half stored images (image->image, the image "
            "itself left out of its answers); fewer when the database holds fewer.",
        ),
    ] = 200,
    seed: Annotated[int, typer.Option(metavar="N", help="Seed for the query sample.")] = 0,
    target: Annotated[
        str, typer.Option(metavar=TARGET_METAVAR, help="What is searched: images or captions.")
    ] = "images",
    methods: Annotated[
        list[str] | None,
        typer.Option(
            "--methods",
            "-m",
            metavar="NAME[,NAME...]",
            help=f"Methods, comma-separated or repeated, from: {', '.join(METHOD_NAMES)}. "
            f"Default: {', '.join(DEFAULT_METHODS)}.",
        ),
    ] = None,
    ef_search: Annotated[
        str | None, typer.Option(metavar="N[,N...]", help="HNSW ef_search sweep, e.g. 10,20,40,80,160,320.")
    ] = None,
    probes: Annotated[
        str | None,
        typer.Option(metavar="N[,N...]", help="IVF probes sweep (Faiss nprobe), e.g. 1,2,4,8,16,32."),
    ] = None,
    rerank: Annotated[
        str | None,
        typer.Option(
            metavar="N[,N...]",
            help="pgvector-bq sweep: Hamming candidates re-ranked exactly, e.g. 10,40,160,640.",
        ),
    ] = None,
    nlist: Annotated[
        int | None, typer.Option(metavar="N", help="IVF lists for pgvector IVFFlat and Faiss IVF.")
    ] = None,
    m: Annotated[
        int | None, typer.Option("--m", metavar="N", help="HNSW M (default: the pgvector index's).")
    ] = None,
    ef_construction: Annotated[
        int | None, typer.Option(metavar="N", help="HNSW efConstruction (default: pgvector's).")
    ] = None,
    metric: Annotated[
        str,
        typer.Option(
            metavar="cosine|ip|l2",
            help="Distance: cosine (<=>), ip (<#>) or l2 (<->), with a pgvector index of the matching "
            "operator class built for the run, and the same Faiss metric (ip for cosine).",
        ),
    ] = "cosine",
    threads: Annotated[
        int, typer.Option(metavar="N", help="Search threads for Faiss/numpy/sklearn (pgvector: 1).")
    ] = 1,
    build_threads: Annotated[
        int, typer.Option(metavar="N", help="Processes/threads for index builds, both engines.")
    ] = 2,
    repeats: Annotated[
        int, typer.Option(metavar="N", help="Timed passes over the queries; latencies are medians.")
    ] = 3,
    keep_ivfflat: Annotated[
        bool, typer.Option(help="Keep a pgvector IVFFlat index built for the run.")
    ] = False,
    rebuild_hnsw: Annotated[
        bool, typer.Option(help="Rebuild pgvector's HNSW index to time its build (else build_s is empty).")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print {rows, meta} as one JSON object on stdout instead of the table, nothing else.",
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Write the rows (a JSON list) to FILE, the machine and run details beside it.",
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Write a PNG to FILE: recall against QPS, or p50 latency against k for several -k.",
        ),
    ] = None,
) -> None:
    """pgvector (exact, HNSW, IVFFlat, binary-quantised HNSW + re-rank) against Faiss (Flat, IVF, HNSW,
    IVF-PQ) and sklearn on the same queries: recall@k, latency percentiles, QPS, build time and size per
    method and setting."""
    from vstore.compare.base import EF_SWEEP, PROBE_SWEEP, RERANK_SWEEP, BuildOptions
    from vstore.compare.harness import compare as run_compare
    from vstore.compare.report import format_table, write_json, write_plot
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
    if as_json:
        print_json({"rows": report.to_json(), "meta": report.meta})
    else:
        typer.echo(format_table(report.rows))
    info(
        f"{report.meta['rows']} {target}, {report.meta['queries']} queries {report.meta['query_kinds']}, "
        f"k={k}, metric {metric}, {threads} search thread(s) on {report.meta['cpu_count']} cores"
    )
    if out:
        meta_file = write_json(report, out)
        info(f"rows -> {out}, machine and run details -> {meta_file}")
    if plot:
        write_plot(report, plot, title=f"{report.meta['rows']} {target}, k={k}")
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
