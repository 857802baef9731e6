"""The figures of `vstore eval`: precision@k against k, and the ROC curves of --threshold (PNG via Agg).
matplotlib is imported inside each function, so `vstore --help` stays fast."""

from __future__ import annotations

import math
from pathlib import Path

from vstore.errors import ConfigError
from vstore.evaluation.harness import EvalReport

PLOT_KINDS = (
    ("caption_image", "caption → image"),
    ("image_image", "image → image"),
    ("external", "external queries (truth: exact top-1)"),
)


def plot_precision(report: EvalReport, path: Path) -> Path:
    """precision@k against k, one line per (method, setting), one panel per query kind; PNG via Agg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [
        (key, title)
        for key, title in PLOT_KINDS
        if any(f"{key}.precision@{report.ks[0]}" in m.metrics for m in report.methods)
    ]
    if not kinds:
        raise ConfigError(
            "nothing to plot: the database has no captions, images or external queries to score."
        )
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 5.0), squeeze=False)
    for ax, (key, title) in zip(axes[0], kinds, strict=True):
        for quality in report.methods:
            values = [quality.metrics.get(f"{key}.precision@{k}", math.nan) for k in report.ks]
            ax.plot(report.ks, values, marker="o", label=quality.method)
        ax.set_title(title)
        ax.set_xlabel("k")
        ax.set_ylabel("precision@k (hit rate: truth in the first k)")
        ax.set_xticks(list(report.ks))
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    handles, names = axes[0][0].get_legend_handles_labels()
    columns = min(len(names), 3)
    rows = math.ceil(len(names) / columns) if names else 0
    suffix = " (random weights)" if report.random_weights else ""
    fig.suptitle(f"vstore eval: {report.model}{suffix}, {report.corpus_images} images")
    # The legend goes under the panels: inside, it would hide the lines that sit near 1.0.
    fig.legend(handles, names, loc="lower center", ncol=columns, fontsize="small", frameon=False)
    fig.tight_layout(rect=(0, 0.06 * rows, 1, 1))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_roc(report: EvalReport, path: Path) -> Path:
    """ROC curves of `--threshold` (false against true positive rate over the pair distance), one per
    (method, setting), with the AUC in the legend; PNG via Agg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [m for m in report.methods if m.roc]
    if not curves:
        raise ConfigError(
            "no ROC to plot: --threshold needs labelled images with both shared and other labels."
        )
    fig, ax = plt.subplots(figsize=(6, 6))
    for quality in curves:
        auc = quality.metrics.get("threshold.auc", math.nan)
        ax.plot(
            [p[0] for p in quality.roc],
            [p[1] for p in quality.roc],
            label=f"{quality.method} (AUC {auc:.3f})",
        )
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set_xlabel("false positive rate (pairs with no shared label)")
    ax.set_ylabel("true positive rate (pairs sharing a label)")
    ax.set_title(f"vstore eval --threshold: {report.model}")
    ax.legend(fontsize="small", loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
