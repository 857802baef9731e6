"""Scoring one configured search method for `vstore eval`: the research's metrics over the query sets,
the exact truth they are measured against, and the widened searches recall@K needs."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vstore.config import Settings
from vstore.db.connect import connection
from vstore.evaluation import metrics
from vstore.evaluation.queries import Queries, load_caption_sets
from vstore.evaluation.zeroshot import split_labels

Progress = Callable[[str], None]


# ------------------------------------------------------------------------------------------ scoring
class RelevanceTo(Mapping[int, float]):
    """id -> cosine(v(id), v(Y)) over a corpus, computed on demand: the graded relevance of NDCG, with Y
    the exact top-1 of a query. Ids outside the corpus are absent (padding gains nothing)."""

    def __init__(self, corpus: Any, anchor: np.ndarray) -> None:
        self.corpus, self.anchor = corpus, anchor

    def __getitem__(self, item: int) -> float:
        row = int(self.corpus.rows_of(np.array([item]))[0])
        if row < 0:
            raise KeyError(item)
        return float(self.corpus.vectors[row] @ self.anchor)

    def __iter__(self) -> Iterator[int]:
        return (int(i) for i in self.corpus.ids)

    def __len__(self) -> int:
        return len(self.corpus)


@dataclass
class ExactTruth:
    """The exact ranking of each query: the top-1 (with ties) for precision, the top k and the relevance
    to the top-1 for NDCG."""

    top1: list[frozenset[int]]
    ranking: list[list[int]]
    relevance: list[RelevanceTo]
    to_query: list[list[float]]  # cosine of each exact result with the query (the query_ndcg ideal)


def exact_truth(exact: Any, corpus: Any, vectors: np.ndarray, k: int) -> ExactTruth:
    truth = ExactTruth([], [], [], [])
    for query in vectors:
        ids, distances = exact.search(query, k)
        truth.top1.append(metrics.tied_ids(ids, distances))
        truth.ranking.append([int(i) for i in ids])
        truth.relevance.append(RelevanceTo(corpus, corpus.vectors[int(corpus.rows_of(ids[:1])[0])]))
        truth.to_query.append([1.0 - float(d) for d in distances])
    return truth


def search_widened(method: Any, vectors: np.ndarray, k: int) -> np.ndarray:
    """`search_batch` for k results with ef_search raised to at least k, as `vstore search` does: pgvector's
    HNSW returns at most hnsw.ef_search rows, so recall@100 at ef_search 40 would count 60 rows that were
    never returned as misses. The method's setting is restored afterwards."""
    setting = dict(method.params)
    widen = "ef_search" in setting and int(setting["ef_search"]) < k
    if widen:
        method.configure(**{**setting, "ef_search": k})
    try:
        return method.search_batch(vectors, k)
    finally:
        if widen:
            method.configure(**setting)


def score_recall(
    method: Any,
    key: str,
    vectors: np.ndarray,
    relevant: Sequence[Collection[int]],
    recall_ks: Sequence[int],
    available: int,
) -> dict[str, float]:
    """recall@K for each K, each searched for exactly K rows (widened, see search_widened), with the share
    of rows that came back beside it (`key.returned@K`, 1.0 unless the method truncated its list)."""
    out: dict[str, float] = {}
    for k in recall_ks:
        found = [list(row) for row in search_widened(method, vectors, k)]
        out[f"{key}.recall@{k}"] = metrics.recall_at_k(found, relevant, k)
        out[f"{key}.returned@{k}"] = metrics.returned_share(found, k, available)
    return out


def score_ndcg(found: np.ndarray, truth: ExactTruth, key: str, ks: Sequence[int]) -> dict[str, float]:
    lists = [[int(i) for i in row] for row in found]
    return {f"{key}.ndcg@{k}": metrics.mean_ndcg_at_k(lists, truth.ranking, truth.relevance, k) for k in ks}


def score_method(
    method: Any,
    corpus: Any,
    queries: Queries,
    truth: dict[str, ExactTruth],
    ks: Sequence[int],
    recall_ks: Sequence[int],
) -> dict[str, float]:
    """All retrieval metrics of one configured method over the image corpus."""
    out: dict[str, float] = {}
    if len(queries.caption_images):
        # Precision and recall are searched separately, each with its own k: an HNSW search for k = 100
        # widens its candidate list to 100, so its top 10 would flatter the method at k = 10.
        found = method.search_batch(queries.caption_vectors, max(ks))
        truths = [int(t) for t in queries.caption_images]
        for k, value in metrics.precision_at_ks(found, truths, ks).items():
            out[f"caption_image.precision@{k}"] = value
        out.update(score_ndcg(found, truth["caption_image"], "caption_image", ks))
        relevant = [[t] for t in truths]
        out.update(
            score_recall(method, "caption_image", queries.caption_vectors, relevant, recall_ks, len(corpus))
        )
    if len(queries.image_ids):
        vectors = corpus.vectors[corpus.rows_of(queries.image_ids)]
        found = method.search_batch(vectors, max(ks))
        for k, value in metrics.precision_at_ks(found, [int(i) for i in queries.image_ids], ks).items():
            out[f"image_image.precision@{k}"] = value
    if "external" in truth and len(queries.external):
        found = method.search_batch(queries.external, max(ks))
        for k, value in metrics.precision_at_ks(found, truth["external"].top1, ks).items():
            out[f"external.precision@{k}"] = value
        out.update(score_ndcg(found, truth["external"], "external", ks))
        rels = [_query_relevances(corpus, q, row) for q, row in zip(queries.external, found, strict=True)]
        lists = [[int(i) for i in row] for row in found]
        for k in ks:
            ideal = [row[:k] for row in truth["external"].to_query]
            out[f"external.query_ndcg@{k}"] = metrics.mean_query_ndcg_at_k(lists, rels, ideal, k)
    return out


THRESHOLD_K = 10


def score_threshold(
    method: Any, corpus: Any, ids: np.ndarray, labels: Sequence[str], k: int = THRESHOLD_K
) -> tuple[dict[str, float], list[tuple[float, float]]]:
    """ROC AUC and the F1-optimal distance threshold over the pairs a method returns (the ImageNet DET
    study): each labelled image searches its k nearest other images; a returned labelled image makes a
    pair, positive when the two share a label; the score is the cosine distance (smaller = positive).
    Returns the figures and the ROC curve's (false positive rate, true positive rate) points."""
    label_of = {int(i): set(split_labels(label)) for i, label in zip(ids, labels, strict=True)}
    rows = corpus.rows_of(np.asarray(ids, dtype=np.int64))
    query_ids = np.asarray(ids, dtype=np.int64)[rows >= 0]
    vectors = corpus.vectors[rows[rows >= 0]]
    distances: list[float] = []
    positive: list[bool] = []
    for query_id, vector, found in zip(query_ids, vectors, method.search_batch(vectors, k + 1), strict=True):
        others = [int(i) for i in found if int(i) >= 0 and int(i) != query_id and int(i) in label_of][:k]
        for other in others:
            distances.append(float(1.0 - corpus.vectors[corpus.rows_of(np.array([other]))[0]] @ vector))
            positive.append(bool(label_of[other] & label_of[int(query_id)]))
    threshold, f1 = metrics.best_f1_threshold(distances, positive)
    scores = {
        "threshold.auc": metrics.roc_auc(distances, positive),
        "threshold.distance": threshold,
        "threshold.f1": f1,
        "threshold.pairs": float(len(distances)),
    }
    return scores, metrics.roc_curve(distances, positive)


def _query_relevances(corpus: Any, query: np.ndarray, ids: np.ndarray) -> list[float]:
    """cosine(v(X_i), q) for each returned id (0 for padding or an id outside the corpus)."""
    rows = corpus.rows_of(ids)
    sims = corpus.vectors[rows.clip(0)] @ query
    return [float(s) if r >= 0 else 0.0 for s, r in zip(sims, rows, strict=True)]


@dataclass
class ImageCaptionScores:
    queries: int
    scores: dict[str, dict[str, float]]  # method label -> image_caption.recall@K / returned@K


def score_image_to_caption(
    settings: Settings,
    image_corpus: Any,
    names: Sequence[str],
    options: Any,
    dataset_id: int | None,
    limit: int | None,
    rng: np.random.Generator,
    recall_ks: Sequence[int],
    say: Progress,
) -> ImageCaptionScores:
    """image -> caption recall@K as the SBU study defines it: every caption of the query image is
    relevant, recall@K = |its captions in the top K| / |its captions|. Each method is built over the
    captions table with the same settings as over the images, so its label matches."""
    from vstore.compare.base import load_corpus
    from vstore.compare.methods import iter_settings

    with connection(settings) as conn:
        image_ids, caption_sets = load_caption_sets(conn, dataset_id, limit, rng)
    rows = image_corpus.rows_of(image_ids)
    keep = rows >= 0
    if not keep.any():
        return ImageCaptionScores(0, {})
    vectors = image_corpus.vectors[rows[keep]]
    relevant = [s for s, k in zip(caption_sets, keep, strict=True) if k]
    say("loading caption vectors")
    captions = load_corpus(settings, "captions")
    scores: dict[str, dict[str, float]] = {}
    for method in iter_settings(captions, settings, names, options):
        say(f"evaluating {method.label} on captions")
        scores[method.label] = score_recall(
            method, "image_caption", vectors, relevant, recall_ks, len(captions)
        )
    return ImageCaptionScores(len(relevant), scores)
