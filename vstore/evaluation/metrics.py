"""Retrieval and classification quality metrics, as the research behind vstore defined them.

Pure functions over ids, distances and scores: no database, no encoder, no printing.

Conventions shared by every retrieval metric here (the documented answers to the awkward cases):

- **Result lists.** A result list is the ranked ids a method returned for one query, best first. The top k
  is its first k *entries*, as a user would see them.
- **Padding.** Negative ids are "no result" padding (Faiss returns -1 when it has fewer than k answers);
  they are dropped before anything is counted. Database ids are positive.
- **k larger than the result list.** Nothing is extrapolated: a list shorter than k simply offers fewer
  chances (missing slots are misses, and add no gain to DCG).
- **Empty results.** An empty list is a miss (precision/recall 0, NDCG 0 unless there was nothing to
  find, see `ndcg_at_k`).
- **Duplicate ids.** A repeated id keeps the slot it occupies (a user sees it twice) but counts once: it
  cannot hit twice, and its repeats add no gain to DCG. So no method can score above the ideal by
  repeating its best answer.
- **Ties among results.** The order a method returned decides (again what a user sees). Where the ground
  truth itself is defined by a ranking (external queries: the exact top-1), every id tied with that
  top-1 is accepted, see `tied_ids`; in zero-shot classification, ties between label scores are broken
  by class order (plain ranks, no fractional credit), see `top_k_accuracy`.
- **Truncated lists.** A method that returns fewer rows than it could (pgvector HNSW caps a scan at
  `hnsw.ef_search` rows) is not silently scored: `returned_share` says how many came back, and the
  harnesses report it beside the figure.
- **No queries.** A mean over zero queries is NaN (there is no answer, and 0 would read as "all missed").
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np

DEFAULT_PRECISION_KS = (1, 3, 5, 7, 10)
DEFAULT_RECALL_KS = (1, 10, 50, 100)
TIE_TOLERANCE = 1e-6  # cosine distances closer than this are equal (float32 rounding)

Truth = int | Collection[int]


def top_k(result_ids: Iterable[int], k: int) -> list[int]:
    """The distinct, non-padding ids among the first k entries of a result list, in order.

    Padding (negative ids) is dropped first, so it never takes a slot; a duplicate keeps its slot but
    appears once in the answer.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    entries = [int(i) for i in result_ids if int(i) >= 0][:k]
    return list(dict.fromkeys(entries))


def _as_set(truth: Truth) -> frozenset[int]:
    if isinstance(truth, (int, np.integer)):
        return frozenset((int(truth),))
    return frozenset(int(t) for t in truth)


def hit_at_k(result_ids: Iterable[int], truth: Truth, k: int) -> bool:
    """Whether any of the acceptable ids `truth` (one id or a collection) is among the first k entries."""
    return not _as_set(truth).isdisjoint(top_k(result_ids, k))


def precision_at_k(results: Sequence[Iterable[int]], truths: Sequence[Truth], k: int) -> float:
    """Internal precision@k as the research defined it: the fraction of queries whose own ground truth
    appears in the top k.

        precision@k = (1 / |Q|) * sum_{q in Q} 1[ truth(q) in top_k(results(q)) ]

    caption->image: truth(q) = the caption's image. image->image: truth(q) = the query image itself.
    External queries: truth(q) = the exact kNN top-1 (plus any id tied with it, see `tied_ids`).
    A truth may be one id or a collection of equally acceptable ids (a hit is any of them).
    """
    if len(results) != len(truths):
        raise ValueError(f"{len(results)} result lists but {len(truths)} truths")
    if not truths:
        return math.nan
    return sum(hit_at_k(r, t, k) for r, t in zip(results, truths, strict=True)) / len(truths)


def precision_at_ks(
    results: Sequence[Iterable[int]], truths: Sequence[Truth], ks: Sequence[int] = DEFAULT_PRECISION_KS
) -> dict[int, float]:
    """`precision_at_k` for each k in `ks` (result lists are materialised once)."""
    lists = [list(r) for r in results]
    return {k: precision_at_k(lists, truths, k) for k in ks}


def recall_at_k(results: Sequence[Iterable[int]], relevant: Sequence[Collection[int]], k: int) -> float:
    """recall@K: the share of each query's relevant ids found in its top K, averaged over queries.

        recall@K = (1 / |Q'|) * sum_{q in Q'} |relevant(q) ∩ top_K(results(q))| / |relevant(q)|

    Q' = the queries with at least one relevant id (a query with nothing to find is skipped rather than
    counted as perfect or as failed). For caption->image each caption has exactly one relevant image, so
    recall@K equals the hit rate (= internal precision@K).
    """
    if len(results) != len(relevant):
        raise ValueError(f"{len(results)} result lists but {len(relevant)} relevant sets")
    scores = []
    for result, rel in zip(results, relevant, strict=True):
        wanted = _as_set(rel)
        if wanted:
            scores.append(len(wanted.intersection(top_k(result, k))) / len(wanted))
    return sum(scores) / len(scores) if scores else math.nan


def recall_at_ks(
    results: Sequence[Iterable[int]],
    relevant: Sequence[Collection[int]],
    ks: Sequence[int] = DEFAULT_RECALL_KS,
) -> dict[int, float]:
    lists = [list(r) for r in results]
    return {k: recall_at_k(lists, relevant, k) for k in ks}


def gain(relevance: float) -> float:
    """Graded gain 2^rel − 1 of a relevance rel = cosine(v(X_i), v(Y)).

    Negative cosines are clipped to 0 first: a negative gain would make returning *nothing* score better
    than returning a dissimilar item, and would let DCG exceed an ideal whose tail is negative.
    """
    return 2.0 ** max(float(relevance), 0.0) - 1.0


def dcg_at_k(relevances: Sequence[float], k: int) -> float:
    """DCG@k = sum_{i=1..min(k, n)} (2^rel_i − 1) / log2(i + 1), positions i counted from 1."""
    return sum(gain(rel) / math.log2(i + 2) for i, rel in enumerate(list(relevances)[:k]))


def _gains_in_order(pairs: Sequence[tuple[int, float]], k: int) -> list[float]:
    """Relevances of the first k (id, relevance) pairs; a repeated id gains 0 after its first slot."""
    seen: set[int] = set()
    gains = []
    for item, rel in pairs[:k]:
        gains.append(rel if item not in seen else 0.0)
        seen.add(item)
    return gains


def ndcg_at_k(
    result_ids: Sequence[int],
    exact_ids: Sequence[int],
    relevance: Mapping[int, float],
    k: int,
) -> float:
    """NDCG@k of one query as the COCO study defines it (the graded relevance is to the exact top-1 Y):

        Y        = exact_ids[0], the exact method's top-1 for the query
        rel(X)   = cosine(v(X), v(Y))                      `relevance[X]`
        DCG@k    = sum_{i=1..k} (2^rel(X_i) − 1) / log2(i + 1)     X_i the method's i-th result
        IDCG@k   = the same sum over the exact top k Y_1..Y_k, in the exact order
        NDCG@k   = DCG@k / IDCG@k

    The ideal list is the exact ranking for the *query*, scored against Y, so an approximate list whose
    items happen to sit nearer Y than the exact ones can score a little above 1.0: the figure is not
    capped (a cap would hide it). Padding ids (< 0) are dropped; a repeated id gains 0 after its first
    slot. An empty exact list (empty corpus) or IDCG 0 gives NaN: there is nothing to normalise by.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    ideal = [relevance[int(i)] for i in top_k(exact_ids, k)]
    idcg = dcg_at_k(ideal, k)
    if idcg <= 0.0:
        return math.nan
    pairs = [(int(i), float(relevance.get(int(i), 0.0))) for i in result_ids if int(i) >= 0]
    return dcg_at_k(_gains_in_order(pairs, k), k) / idcg


def query_ndcg_at_k(
    result_ids: Sequence[int],
    relevances: Sequence[float] | Mapping[int, float],
    ideal_relevances: Sequence[float],
    k: int,
) -> float:
    """A variant kept under its own name: relevance to the *query* rather than to the exact top-1.

        rel(X_i) = cosine(v(X_i), q)   q the query vector
        IDCG@k   = DCG@k of the exact top k (sorted by relevance, best first)

    `relevances` is parallel to `result_ids` (or a mapping id -> relevance). When IDCG is 0 (no item has
    a positive cosine with the query) there is nothing to find and the score is 1.0; it is capped at 1.0.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if isinstance(relevances, Mapping):
        pairs = [(int(i), float(relevances[int(i)])) for i in result_ids if int(i) >= 0]
    else:
        if len(relevances) != len(result_ids):
            raise ValueError(f"{len(result_ids)} ids but {len(relevances)} relevances")
        pairs = [(int(i), float(r)) for i, r in zip(result_ids, relevances, strict=True) if int(i) >= 0]
    ideal = dcg_at_k(sorted((float(r) for r in ideal_relevances), reverse=True), k)
    if ideal <= 0.0:
        return 1.0
    return min(dcg_at_k(_gains_in_order(pairs, k), k) / ideal, 1.0)


def mean_ndcg_at_k(
    results: Sequence[Sequence[int]],
    exact: Sequence[Sequence[int]],
    relevances: Sequence[Mapping[int, float]],
    k: int,
) -> float:
    """Mean of `ndcg_at_k` over the queries where it is defined (NaN for none)."""
    if not (len(results) == len(exact) == len(relevances)):
        raise ValueError("results, exact and relevances must have one entry per query")
    scores = [ndcg_at_k(r, e, rel, k) for r, e, rel in zip(results, exact, relevances, strict=True)]
    scores = [s for s in scores if not math.isnan(s)]
    return float(np.mean(scores)) if scores else math.nan


def mean_query_ndcg_at_k(
    results: Sequence[Sequence[int]],
    relevances: Sequence[Sequence[float]],
    ideal_relevances: Sequence[Sequence[float]],
    k: int,
) -> float:
    """Mean of `query_ndcg_at_k` over queries (NaN for no queries)."""
    if not (len(results) == len(relevances) == len(ideal_relevances)):
        raise ValueError("results, relevances and ideal_relevances must have one entry per query")
    if not results:
        return math.nan
    return float(
        np.mean(
            [
                query_ndcg_at_k(r, rel, ideal, k)
                for r, rel, ideal in zip(results, relevances, ideal_relevances, strict=True)
            ]
        )
    )


def returned_share(results: Sequence[Iterable[int]], k: int, available: int) -> float:
    """Mean over queries of (non-padding entries in the first k) / min(k, available): 1.0 when every
    query got as many rows as it could. Below 1.0 a recall@k figure is truncated (an HNSW scan capped at
    ef_search rows, an IVF probe of too few lists), not missed. NaN for no queries."""
    lists = [list(r) for r in results]
    if not lists:
        return math.nan
    want = max(1, min(k, available))
    return float(np.mean([min(sum(1 for i in r[:k] if int(i) >= 0), want) / want for r in lists]))


def tied_ids(ids: Sequence[int], distances: Sequence[float], tol: float = TIE_TOLERANCE) -> frozenset[int]:
    """The ids of an exact ranking tied with its first entry: distance within `tol` of the best.

    Used as the ground truth of an external query: when two items are exactly as near as the exact top-1
    (duplicate images, say), which one an exact scan lists first is arbitrary, so each of them is a
    correct answer. Padding ids (< 0) are ignored; an empty ranking gives an empty set.
    """
    pairs = [(int(i), float(d)) for i, d in zip(ids, distances, strict=True) if int(i) >= 0]
    if not pairs:
        return frozenset()
    best = min(d for _, d in pairs)
    return frozenset(i for i, d in pairs if d <= best + tol)


def top_k_accuracy(
    scores: np.ndarray, true_labels: Sequence[int | Collection[int]] | np.ndarray, k: int
) -> float:
    """Zero-shot top-k accuracy: the share of items with at least one of their true classes among the k
    highest-scoring (the ImageNet DET study: an image with several labels is right when any is in its
    top k).

    `scores[n, c]` is the similarity of item n with class c's text embedding; `true_labels[n]` the index
    of item n's class, or a collection of indexes for an item with several labels.

        top-k accuracy = (1 / N) * sum_n 1[ {true classes of n} ∩ top_k(scores[n]) ≠ ∅ ]

    Plain ranks: the top k is the first k classes of a stable sort by descending score, so ties are
    broken by class order (the order of the sorted label names) and never give fractional credit. An
    item with no label is refused. k larger than the number of classes gives 1.0.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if scores.ndim != 2 or scores.shape[0] != len(true_labels):
        raise ValueError(f"scores must be [items, classes] with one row per label, got {scores.shape}")
    if scores.shape[0] == 0:
        return math.nan
    best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    hits = 0
    for row, labels in zip(best, true_labels, strict=True):
        wanted = _as_set(labels)
        if not wanted:
            raise ValueError("every item needs at least one true label")
        hits += not wanted.isdisjoint(int(c) for c in row)
    return hits / scores.shape[0]


def pair_cosine_stats(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean and max cosine similarity of matched rows a[i], b[i] (e.g. each caption and its image).

    A diagnostic of the embedding model: trained CLIP pairs sit well above unrelated pairs; random
    weights give values near the cosine of unrelated vectors. Rows need not be normalised. (NaN, NaN)
    for no pairs.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in shape: {a.shape} vs {b.shape}")
    if a.shape[0] == 0:
        return math.nan, math.nan
    norms = np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    cosines = (a * b).sum(axis=1) / norms
    return float(cosines.mean()), float(cosines.max())


def roc_auc(distances: Sequence[float], positive: Sequence[bool]) -> float:
    """ROC AUC of "a smaller distance means a positive pair" (the ImageNet DET study's ROC over angular
    distance): the probability that a random positive pair is nearer than a random negative one, ties
    counting one half (the Mann–Whitney statistic). NaN without both kinds of pairs."""
    d = np.asarray(distances, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    from scipy.stats import rankdata

    ranks = rankdata(d)  # ascending, ties share their mean rank
    # Mann–Whitney: pairs where the negative is farther than the positive, ties counting one half
    u = float(ranks[~pos].sum()) - n_neg * (n_neg + 1) / 2.0
    return u / (n_pos * n_neg)


def roc_curve(distances: Sequence[float], positive: Sequence[bool]) -> list[tuple[float, float]]:
    """(false positive rate, true positive rate) of "positive when distance <= t" for t from below the
    smallest distance to the largest: (0, 0) first, (1, 1) last. [] without both kinds of pairs."""
    d = np.asarray(distances, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return []
    points = [(0.0, 0.0)]
    for t in np.unique(d):
        predicted = d <= t
        points.append((int((predicted & ~pos).sum()) / n_neg, int((predicted & pos).sum()) / n_pos))
    return points


def best_f1_threshold(distances: Sequence[float], positive: Sequence[bool]) -> tuple[float, float]:
    """(threshold, F1) maximising F1 of "positive when distance <= threshold", over the distances seen
    (the smallest such threshold on ties of F1). (NaN, NaN) without a positive pair."""
    d = np.asarray(distances, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    if not pos.any():
        return math.nan, math.nan
    best = (math.nan, -1.0)
    for t in np.unique(d):
        predicted = d <= t
        tp = int((predicted & pos).sum())
        f1 = 2 * tp / (int(predicted.sum()) + int(pos.sum()))
        if f1 > best[1] + 1e-12:
            best = (float(t), f1)
    return best
