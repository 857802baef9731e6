"""The outputs of `vstore compare`: the plain-text table, the JSON files (rows and run details) and the
plot (vstore.compare.plots)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from vstore.compare.harness import CompareReport, CompareRow

TRUNCATED_NOTE = (
    "* fewer rows came back than the method could return (e.g. pgvector HNSW returns at most ef_search "
    "rows): 'returned' in --json gives the share; the recall counts only what came back"
)


def format_table(rows: Sequence[CompareRow]) -> str:
    """A plain-text table, one line per method and setting."""
    several_k = len({r.k for r in rows}) > 1
    # Recall per query kind beside the mixed figure: the stored-image queries flatter graph and IVF
    # indexes (their own vector is in the index), the cross-modal ones do not.
    kinds = list(dict.fromkeys(kind for r in rows for kind in r.recall_by_kind)) if rows else []
    kinds = kinds if len(kinds) > 1 else []
    header = (
        "method",
        "params",
        *(("k",) if several_k else ()),
        "recall",
        *(f"r:{kind}" for kind in kinds),
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "qps",
        "server_ms",
        "build_s",
        "size_MB",
        *(f"p50:{kind}" for kind in kinds),
    )
    lines = [header]
    for r in rows:
        lines.append(
            (
                r.method,
                ",".join(f"{k}={v}" for k, v in r.params.items()) or "-",
                *((str(r.k),) if several_k else ()),
                f"{r.recall_at_k:.3f}" + ("*" if r.returned < 1.0 else ""),
                *(f"{r.recall_by_kind.get(kind, float('nan')):.3f}" for kind in kinds),
                f"{r.p50_ms:.3f}",
                f"{r.p95_ms:.3f}",
                f"{r.p99_ms:.3f}",
                f"{r.qps:.0f}",
                "-" if r.server_ms is None else f"{r.server_ms:.3f}",
                "-" if r.build_s is None else f"{r.build_s:.2f}",
                f"{r.size_bytes / 1e6:.1f}",
                *(
                    f"{r.latency_by_kind[kind]['p50_ms']:.3f}" if kind in r.latency_by_kind else "-"
                    for kind in kinds
                ),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    table = "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
    return table + ("\n" + TRUNCATED_NOTE if any(r.returned < 1.0 for r in rows) else "")


def write_json(report: CompareReport, path: Path) -> Path:
    """The rows (a JSON list) to `path`, the machine and run details beside it (.meta.json)."""
    path.write_text(json.dumps(report.to_json(), indent=1) + "\n")
    meta_file = path.with_suffix(".meta.json")
    meta_file.write_text(json.dumps(report.meta, indent=1) + "\n")
    return meta_file


def write_plot(report: CompareReport, path: Path, *, title: str) -> Path:
    """Recall against QPS; or, when the run measured several k, p50 latency against k."""
    from vstore.compare.plots import plot_latency_k, plot_recall_qps

    if len({row.k for row in report.rows}) > 1:
        plot_latency_k(report.rows, path, title=title)
    else:
        plot_recall_qps(report.rows, path, title=title)
    return path
