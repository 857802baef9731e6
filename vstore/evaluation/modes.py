"""`vstore eval --mode text|vector|hybrid`: retrieval quality of each search mode, leave-one-caption-out.

Each query is one caption (a seeded sample of at most `limit`); the relevant answer is its image. Text
mode searches the words of the *other* captions (the query's own caption is left out of the index, else
every query would find itself); vector mode searches the image vectors with the caption's stored vector;
hybrid fuses the two lists by reciprocal rank (search/hybrid.py) as `vstore search --mode hybrid` does.
R@K: the share of queries whose image is among the first K images.

Text figures mean something on any captioned collection (no model involved); vector and hybrid figures
need real model weights: with random weights the vector list is noise.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vstore.config import Settings
from vstore.db.connect import connection, vector_array
from vstore.db.datasets import dataset_id as find_dataset_id
from vstore.db.sql import load
from vstore.errors import ConfigError, NotFound
from vstore.search import hybrid
from vstore.search.filters import nearest

MODES = hybrid.MODES


@dataclass
class ModeQuality:
    mode: str
    queries: int
    recall: dict[int, float]  # K -> R@K
    p50_ms: float

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "queries": self.queries,
            **{f"R@{k}": v for k, v in self.recall.items()},
            "p50_ms": self.p50_ms,
        }


@dataclass
class ModeReport:
    model: str
    random_weights: bool
    rrf_k: int
    results: list[ModeQuality] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "protocol": "leave-one-caption-out",
            "model": self.model,
            "random_weights": self.random_weights,
            "rrf_k": self.rrf_k,
            "modes": [r.as_json() for r in self.results],
        }


def evaluate_modes(
    settings: Settings,
    modes: Sequence[str] = MODES,
    *,
    ks: Sequence[int] = (1, 5, 10),
    limit: int = 1000,
    dataset: str | None = None,
    seed: int = 0,
    rrf_k: int = hybrid.DEFAULT_RRF_K,
) -> ModeReport:
    """R@K of each mode over the same sampled caption queries."""
    from vstore.db.migrations import require_model

    for mode in modes:
        if mode not in MODES:
            raise ConfigError(f"unknown --mode {mode!r}; choose text, vector or hybrid (comma-separated).")
    if not ks or min(ks) < 1 or max(ks) > 1000:
        raise ConfigError("--recall-k values must be between 1 and 1000.")
    spec = require_model(settings)
    depth = hybrid.depth(max(ks))
    report = ModeReport(spec.label, spec.random_weights, rrf_k)
    with connection(settings, autocommit=True) as conn:
        dataset_id = find_dataset_id(conn, dataset)
        sample = conn.execute(
            load("queries/eval_caption_sample"), {"dataset_id": dataset_id, "seed": seed, "limit": limit}
        ).fetchall()
        if not sample:
            raise NotFound("no captions to query with; ingest a captioned dataset first.")
        for mode in modes:
            ranks, times = [], []
            for caption_id, text, image_id, embedding in sample:
                started = time.perf_counter()
                text_ids: list[int] = []
                vector_ids: list[int] = []
                if mode in ("text", "hybrid"):
                    text_ids = [
                        int(r[0])
                        for r in conn.execute(
                            load("queries/eval_text_images"),
                            {"query": text, "exclude_caption_id": caption_id, "k": depth},
                        ).fetchall()
                    ]
                if mode in ("vector", "hybrid") and embedding is not None:
                    found = nearest(conn, vector_array(embedding), k=depth)
                    vector_ids = [int(r[0]) for r in found.rows]
                if mode == "text":
                    ranked = text_ids
                elif mode == "vector":
                    ranked = vector_ids
                else:
                    ranked = [f.id for f in hybrid.rrf(text_ids, vector_ids, rrf_k)]
                times.append((time.perf_counter() - started) * 1000.0)
                ranks.append(ranked.index(image_id) + 1 if image_id in ranked[: max(ks)] else None)
            recall = {k: float(np.mean([r is not None and r <= k for r in ranks])) for k in ks}
            report.results.append(ModeQuality(mode, len(sample), recall, float(np.median(times))))
    return report
