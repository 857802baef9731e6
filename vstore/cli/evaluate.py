"""`vstore eval`: retrieval quality (precision@k, recall@K, NDCG@k, zero-shot) per search method. Thin:
parse, one library call, render."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from vstore.cli.app import app, info, settings, warn_random_weights


def _ints(text: str | None) -> list[int] | None:
    from vstore.evaluation.harness import parse_ks

    return list(parse_ks(text, (), "--ef-search/--probes")) if text else None


def _fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _table(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return [title, line(header), line(["-" * w for w in widths]), *(line(r) for r in rows), ""]


def _cell(metrics: dict[str, float], key: str, name: str, k: int) -> str:
    """A figure, with '*' when the method returned fewer rows than it could (see the footnote)."""
    text = _fmt(metrics.get(f"{key}.{name}@{k}"))
    returned = metrics.get(f"{key}.returned@{k}")
    if name == "recall" and returned is not None and returned < 1.0:
        text += "*"
    return text


TRUNCATED_NOTE = (
    "* the method returned fewer than K rows for some queries (IVF probes too few lists); "
    "--json gives the share as <kind>.returned@K"
)


def render(report) -> str:  # report: vstore.evaluation.harness.EvalReport
    out: list[str] = []
    blocks = [
        (
            "caption_image",
            f"caption -> image ({report.caption_queries} queries; NDCG relevance: cosine to the exact top-1)",
            [("precision", report.ks, "P"), ("ndcg", report.ks, "NDCG"), ("recall", report.recall_ks, "R")],
        ),
        (
            "image_caption",
            f"image -> caption ({report.image_caption_queries} queries; all of an image's captions relevant)",
            [("recall", report.recall_ks, "R")],
        ),
        (
            "image_image",
            f"image -> image ({report.image_queries} stored images as queries; truth: the image itself)",
            [("precision", report.ks, "P")],
        ),
        (
            "external",
            f"external queries ({report.external_queries}; truth: exact top-1)",
            [
                ("precision", report.ks, "P"),
                ("ndcg", report.ks, "NDCG"),
                ("query_ndcg", report.ks, "qNDCG"),
            ],
        ),
    ]
    truncated = False
    for key, title, columns in blocks:
        if not any(f"{key}.{columns[0][0]}@{columns[0][1][0]}" in m.metrics for m in report.methods):
            continue
        header = ["method"] + [f"{short}@{k}" for _, ks, short in columns for k in ks]
        rows = [
            [m.method] + [_cell(m.metrics, key, name, k) for name, ks, _ in columns for k in ks]
            for m in report.methods
        ]
        truncated = truncated or any(cell.endswith("*") for row in rows for cell in row[1:])
        out += _table(title, header, rows)
    if truncated:
        out += [TRUNCATED_NOTE, ""]
    if any("threshold.auc" in m.metrics for m in report.methods):
        rows = [
            [
                m.method,
                _fmt(m.metrics.get("threshold.auc")),
                _fmt(m.metrics.get("threshold.distance")),
                _fmt(m.metrics.get("threshold.f1")),
                f"{m.metrics.get('threshold.pairs', 0):.0f}",
            ]
            for m in report.methods
        ]
        out += _table(
            "threshold (pairs among each labelled image's 10 nearest; positive = a shared label)",
            ["method", "ROC AUC", "F1-best distance", "F1", "pairs"],
            rows,
        )
    if report.zero_shot:
        first = report.zero_shot[0]
        rows = [[repr(z.template), _fmt(z.top1), _fmt(z.top5)] for z in report.zero_shot]
        out += _table(
            f"zero-shot ({first.images} labelled images, {first.labels} labels)",
            ["template", "top-1", "top-5"],
            rows,
        )
    if report.pair_cosine_mean is not None:
        out.append(
            f"true caption-image cosine: mean {_fmt(report.pair_cosine_mean)}, "
            f"max {_fmt(report.pair_cosine_max)} (model {report.model})"
        )
    return "\n".join(out).rstrip() + "\n"


@app.command("eval")
def eval_command(
    methods: Annotated[
        list[str] | None,
        typer.Option(
            "--methods",
            "-m",
            metavar="NAMES",
            help="Methods, comma-separated or repeated: exact-numpy, pgvector-exact, "
            "pgvector-hnsw, pgvector-ivfflat, faiss-flat, faiss-ivf, faiss-hnsw, faiss-ivfpq, "
            "sklearn-brute. Default: exact-numpy, pgvector-hnsw, pgvector-ivfflat, faiss-ivf, "
            "faiss-hnsw, faiss-ivfpq.",
        ),
    ] = None,
    k: Annotated[str, typer.Option("--k", help="k values for precision@k and NDCG@k.")] = "1,3,5,7,10",
    recall_k: Annotated[
        str, typer.Option("--recall-k", help="K values for caption->image recall@K.")
    ] = "1,10,50,100",
    queries_file: Annotated[
        Path | None,
        typer.Option(
            "--queries-file",
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
        typer.Option(help="Take the queries from this dataset only (by name; see `vstore datasets`)."),
    ] = None,
    limit: Annotated[
        int, typer.Option(help="At most this many caption and image queries each (seeded sample); 0 = all.")
    ] = 1000,
    ef_search: Annotated[
        str, typer.Option("--ef-search", help="HNSW ef_search settings to evaluate, comma-separated.")
    ] = "40",
    probes: Annotated[
        str | None,
        typer.Option("--probes", help="IVF probes/nprobe settings, comma-separated (default: sqrt(lists))."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the query sample.")] = 0,
    metric: Annotated[
        str, typer.Option(help="Distance for pgvector and Faiss: cosine (<=>), ip (<#>) or l2 (<->).")
    ] = "cosine",
    threshold: Annotated[
        bool,
        typer.Option(
            "--threshold",
            help="For labelled images: ROC AUC and the F1-optimal cosine-distance threshold per method, "
            "over the pairs among each image's 10 nearest (positive = a shared label).",
        ),
    ] = False,
    device: Annotated[
        str | None, typer.Option(help="Encoder device for external queries: auto, cpu, cuda.")
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write method -> metric -> value to FILE.")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write precision@k against k to FILE.png.")
    ] = None,
    roc_plot: Annotated[
        Path | None, typer.Option("--roc-plot", help="With --threshold: write the ROC curves to FILE.png.")
    ] = None,
) -> None:
    """Measure retrieval quality per search method on this database's own data.

    caption->image precision@k (truth: the caption's image), NDCG@k (relevance: cosine to the exact top-1)
    and recall@K (searched with ef_search >= K); image->caption recall@K (all of an image's captions are
    relevant); image->image precision@k (truth: the image itself); with --queries-file, precision@k against
    the exact top-1 and NDCG@k; zero-shot top-1/top-5 accuracy per template when images have labels
    (class folders; 'cat|dog' is two labels); and the mean/max cosine of true caption-image pairs.
    Example: vstore eval --json eval.json --plot eval.png"""
    from vstore.db.migrations import require_model
    from vstore.evaluation import metrics
    from vstore.evaluation.harness import evaluate, parse_ks, plot_precision, plot_roc

    current = settings(device=device)
    spec = require_model(current)
    if spec.random_weights:
        warn_random_weights(spec.label)
    report = evaluate(
        current,
        methods=methods,
        ks=parse_ks(k, metrics.DEFAULT_PRECISION_KS, "--k"),
        recall_ks=parse_ks(recall_k, metrics.DEFAULT_RECALL_KS, "--recall-k"),
        queries_file=queries_file,
        templates=template or (),
        dataset=dataset,
        limit=limit or None,
        ef_search=_ints(ef_search) or None,
        probes=_ints(probes),
        seed=seed,
        metric=metric,
        threshold=threshold,
        progress=info,
    )
    typer.echo(render(report), nl=False)
    if json_file is not None:
        json_file.write_text(json.dumps(report.as_json(), indent=2) + "\n", encoding="utf-8")
        info(f"wrote {json_file}")
    if plot is not None:
        info(f"wrote {plot_precision(report, plot)}")
    if roc_plot is not None:
        info(f"wrote {plot_roc(report, roc_plot)}")
