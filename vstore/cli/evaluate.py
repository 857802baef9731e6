"""`vstore eval`: retrieval quality (precision@k, recall@K, NDCG@k, zero-shot) per search method. Thin:
parse, one library call, render."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vstore.cli.app import DeviceOpt, app, info, print_json, settings, warn, warn_random_weights
from vstore.compare.names import METHOD_NAMES
from vstore.config import Settings
from vstore.db.knobs import DEFAULT_EF_SEARCH


def _ints(text: str | None) -> list[int] | None:
    from vstore.evaluation.harness import parse_ks

    return list(parse_ks(text, (), "--ef-search/--probes")) if text else None


@app.command("eval")
def eval_command(
    methods: Annotated[
        list[str] | None,
        typer.Option(
            "--methods",
            "-m",
            metavar="NAME[,NAME...]",
            help=f"Methods, comma-separated or repeated, from: {', '.join(METHOD_NAMES)}. Default: "
            "exact-numpy, pgvector-hnsw, pgvector-ivfflat, faiss-ivf, faiss-hnsw, faiss-ivfpq.",
        ),
    ] = None,
    k: Annotated[
        str, typer.Option("-k", "--k", metavar="K[,K...]", help="k values for precision@k and NDCG@k.")
    ] = "1,3,5,7,10",
    recall_k: Annotated[
        str, typer.Option("--recall-k", metavar="K[,K...]", help="K values for caption->image recall@K.")
    ] = "1,10,50,100",
    queries_file: Annotated[
        Path | None,
        typer.Option(
            "--queries-file",
            metavar="FILE",
            help="External queries, one a line: a text, or the path of an image not "
            "in the dataset (relative to the file). Scored by precision@k against the exact top-1 and "
            "NDCG@k.",
        ),
    ] = None,
    template: Annotated[
        list[str] | None,
        typer.Option(
            "--template",
            metavar="TEMPLATE",
            help="Zero-shot prompt template with {label}; repeatable. "
            "Default: '{label}' and 'a photo of a {label}'.",
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            metavar="NAME", help="Take the queries from this dataset only (by name; see `vstore datasets`)."
        ),
    ] = None,
    queries: Annotated[
        int,
        typer.Option(
            "--queries",
            metavar="N",
            help="At most this many caption and image queries each (seeded sample); 0 = all.",
        ),
    ] = 1000,
    ef_search: Annotated[
        str,
        typer.Option(
            "--ef-search", metavar="N[,N...]", help="HNSW ef_search settings to evaluate, comma-separated."
        ),
    ] = str(DEFAULT_EF_SEARCH),
    probes: Annotated[
        str | None,
        typer.Option(
            "--probes",
            metavar="N[,N...]",
            help="IVF probes settings (Faiss nprobe), comma-separated (default: sqrt(lists)).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(metavar="N", help="Seed of the query sample.")] = 0,
    metric: Annotated[
        str,
        typer.Option(
            metavar="cosine|ip|l2",
            help="Distance for pgvector and Faiss: cosine (<=>), ip (<#>) or l2 (<->).",
        ),
    ] = "cosine",
    threshold: Annotated[
        bool,
        typer.Option(
            "--threshold",
            help="For labelled images: ROC AUC and the F1-optimal cosine-distance threshold per method, "
            "over the pairs among each image's 10 nearest (positive = a shared label).",
        ),
    ] = False,
    mode: Annotated[
        str | None,
        typer.Option(
            "--mode",
            metavar="MODES",
            help="Instead of the methods: R@K of search modes text, vector, hybrid (comma-separated), "
            "leave-one-caption-out (query = a caption, relevant = its image, the other captions indexed).",
        ),
    ] = None,
    rrf_k: Annotated[int, typer.Option("--rrf-k", help="With --mode hybrid: the fusion constant.")] = 60,
    device: DeviceOpt = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print method -> metric -> value as JSON on stdout instead of the tables."
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", help="Write method -> metric -> value to FILE (JSON)."),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", metavar="FILE", help="Write precision@k against k to FILE (PNG).")
    ] = None,
    roc_plot: Annotated[
        Path | None,
        typer.Option(
            "--roc-plot", metavar="FILE", help="With --threshold: write the ROC curves to FILE (PNG)."
        ),
    ] = None,
) -> None:
    """Measure retrieval quality per search method on this database's own data.

    caption->image precision@k (truth: the caption's image), NDCG@k (relevance: cosine to the exact top-1)
    and recall@K (searched with ef_search >= K); image->caption recall@K (all of an image's captions are
    relevant); image->image precision@k (truth: the image itself); with --queries-file, precision@k against
    the exact top-1 and NDCG@k; zero-shot top-1/top-5 accuracy per template when images have labels
    (class folders; 'cat|dog' is two labels); and the mean/max cosine of true caption-image pairs.
    Example: vstore eval --out eval.json --plot eval.png"""
    from vstore.db.migrations import require_model
    from vstore.evaluation import metrics
    from vstore.evaluation.harness import evaluate, parse_ks
    from vstore.evaluation.plots import plot_precision, plot_roc
    from vstore.evaluation.report import render

    current = settings(device=device)
    spec = require_model(current)
    if spec.random_weights and mode != "text":
        warn_random_weights(spec.label)
    if mode is not None:
        _eval_modes(current, mode, recall_k, dataset, queries, seed, rrf_k, as_json, out)
        return
    report = evaluate(
        current,
        methods=methods,
        ks=parse_ks(k, metrics.DEFAULT_PRECISION_KS, "--k"),
        recall_ks=parse_ks(recall_k, metrics.DEFAULT_RECALL_KS, "--recall-k"),
        queries_file=queries_file,
        templates=template or (),
        dataset=dataset,
        limit=queries or None,
        ef_search=_ints(ef_search) or None,
        probes=_ints(probes),
        seed=seed,
        metric=metric,
        threshold=threshold,
        progress=info,
    )
    if template and report.zero_shot_skipped:
        warn(f"--template given, but zero-shot was skipped: {report.zero_shot_skipped}.")
    if as_json:
        print_json(report.as_json())
    else:
        typer.echo(render(report), nl=False)
    if out is not None:
        out.write_text(json.dumps(report.as_json(), indent=2) + "\n", encoding="utf-8")
        info(f"wrote {out}")
    if plot is not None:
        info(f"wrote {plot_precision(report, plot)}")
    if roc_plot is not None:
        info(f"wrote {plot_roc(report, roc_plot)}")


def _eval_modes(
    current: Settings,
    mode: str,
    recall_k: str,
    dataset: str | None,
    limit: int | None,
    seed: int,
    rrf_k: int,
    as_json: bool,
    out: Path | None,
) -> None:
    """`vstore eval --mode ...`: one library call, a table, optionally the JSON file."""
    from vstore.evaluation.harness import parse_ks
    from vstore.evaluation.modes import evaluate_modes

    modes = [m.strip() for m in mode.split(",") if m.strip()]
    ks = parse_ks(recall_k, (1, 5, 10), "--recall-k")
    report = evaluate_modes(
        current, modes, ks=ks, limit=limit or 1_000_000, dataset=dataset, seed=seed, rrf_k=rrf_k
    )
    if as_json:
        print_json(report.as_json())
    else:
        header = " ".join(f"{'R@' + str(k):>7}" for k in ks)
        typer.echo(f"{'mode':<8} {'queries':>7} {header} {'p50 ms':>8}")
        for r in report.results:
            cells = " ".join(f"{r.recall[k]:>7.3f}" for k in ks)
            typer.echo(f"{r.mode:<8} {r.queries:>7} {cells} {r.p50_ms:>8.2f}")
    if report.random_weights:
        info("vector and hybrid figures come from random weights: only the text row means anything here.")
    if out is not None:
        out.write_text(json.dumps(report.as_json(), indent=2) + "\n", encoding="utf-8")
        info(f"wrote {out}")
