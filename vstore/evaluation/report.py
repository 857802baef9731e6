"""The plain-text report of `vstore eval`: one table per query kind, threshold and zero-shot blocks."""

from __future__ import annotations

import math

from vstore.evaluation.harness import EvalReport


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


HIT_RATE_NOTE = (
    "P@k: the share of queries whose true answer is among the first k (the seed papers' precision@k, a hit "
    "rate; not the share of the k results that are relevant)"
)
TRUNCATED_NOTE = (
    "* the method returned fewer than K rows for some queries (IVF probes too few lists); "
    "--json gives the share as <kind>.returned@K"
)


def render(report: EvalReport) -> str:
    """The plain-text tables of `vstore eval`, one block per query kind."""
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
    truncated = hit_rates = False
    for key, title, columns in blocks:
        if not any(f"{key}.{columns[0][0]}@{columns[0][1][0]}" in m.metrics for m in report.methods):
            continue
        header = ["method"] + [f"{short}@{k}" for _, ks, short in columns for k in ks]
        rows = [
            [m.method] + [_cell(m.metrics, key, name, k) for name, ks, _ in columns for k in ks]
            for m in report.methods
        ]
        truncated = truncated or any(cell.endswith("*") for row in rows for cell in row[1:])
        hit_rates = hit_rates or any(name == "precision" for name, _, _ in columns)
        out += _table(title, header, rows)
    if hit_rates:
        out += [HIT_RATE_NOTE, ""]
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
    if report.zero_shot_skipped:
        out += [f"zero-shot: skipped, {report.zero_shot_skipped}", ""]
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
