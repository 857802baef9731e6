"""Plots of compare results: recall@k against queries per second, one curve per method, log QPS axis (the
ann-benchmarks layout: up and to the right is better). matplotlib is imported lazily with the Agg backend,
so no display is needed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vstore.errors import ConfigError


def _get(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, dict) else getattr(row, name)


def plot_recall_qps(rows: Sequence[Any], path: Path, *, title: str | None = None) -> Path:
    """Write a PNG of recall@k (x) against QPS (y, log scale). `rows` are CompareRow objects or dicts
    with method, recall_at_k and qps (eval rows work too)."""
    plt = _pyplot()
    path = _png_path(rows, path)
    curves: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        curves.setdefault(str(_get(row, "method")), []).append(
            (float(_get(row, "recall_at_k")), float(_get(row, "qps")))
        )
    figure, axes = plt.subplots(figsize=(8, 5.5), dpi=110)
    markers = "os^vD<>pX*h"
    for i, (method, points) in enumerate(sorted(curves.items())):
        points.sort()
        axes.plot(
            [p[0] for p in points],
            [p[1] for p in points],
            marker=markers[i % len(markers)],
            linestyle="-" if len(points) > 1 else "none",
            label=method,
        )
    k = (
        _get(rows[0], "k")
        if (isinstance(rows[0], dict) and "k" in rows[0]) or hasattr(rows[0], "k")
        else None
    )
    axes.set_xlabel(f"recall@{k}" if k else "recall")
    axes.set_ylabel("queries per second (single query, log scale)")
    axes.set_yscale("log")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small", loc="best")
    axes.set_title(title or "recall vs QPS (up and right is better)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    plt.close(figure)
    return path


def plot_latency_k(rows: Sequence[Any], path: Path, *, title: str | None = None) -> Path:
    """Write a PNG of p50 latency (y, log scale) against k (x, log scale), one curve per method and
    setting (the SBU study's latency-against-k figure). `rows` are CompareRow objects or dicts."""
    plt = _pyplot()
    path = _png_path(rows, path)
    curves: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        params = ",".join(f"{k}={v}" for k, v in dict(_get(row, "params")).items())
        label = f"{_get(row, 'method')}({params})" if params else str(_get(row, "method"))
        curves.setdefault(label, []).append((int(_get(row, "k")), float(_get(row, "p50_ms"))))
    figure, axes = plt.subplots(figsize=(8, 5.5), dpi=110)
    markers = "os^vD<>pX*h"
    for i, (label, points) in enumerate(sorted(curves.items())):
        points.sort()
        axes.plot(
            [p[0] for p in points], [p[1] for p in points], marker=markers[i % len(markers)], label=label
        )
    axes.set_xlabel("k (results per query)")
    axes.set_ylabel("p50 latency, ms (single query, log scale)")
    axes.set_xscale("log")
    axes.set_yscale("log")
    ks = sorted({int(_get(row, "k")) for row in rows})
    axes.set_xticks(ks, [str(k) for k in ks])
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small", loc="best")
    axes.set_title(title or "p50 latency against k")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    plt.close(figure)
    return path


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png_path(rows: Sequence[Any], path: Path) -> Path:
    """The output path, checked: something to plot, and a .png name."""
    if not rows:
        raise ConfigError("nothing to plot: no result rows.")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"--plot writes a PNG; give a file name ending in .png (got {path.name}).")
    return path
