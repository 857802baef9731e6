"""`vstore eval`: retrieval quality of every search method on the database's own data.

For each (method, setting) pair built by vstore.methods (the same machinery `vstore compare` times):

- caption -> image: precision@k (truth: the caption's image) and recall@K (one relevant image per caption);
- image -> image: precision@k (truth: the query image itself);
- external queries (`--queries-file`: texts, or paths of images not in the dataset): precision@k with the
  exact kNN top-1 as truth, and NDCG@k with rel = cosine(result, query) and IDCG from the exact top k;

plus, once per database (they measure the model, not an index): zero-shot top-1/top-5 accuracy per prompt
template on labelled images, and the mean/max cosine of true caption-image pairs.

Every method searches the whole searchable image set (what `vstore search` searches); `dataset` narrows
the *queries* to one dataset's captions and images. Queries are a seeded sample of at most `limit` per
kind, so every method answers the same ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vstore.config import Settings
from vstore.db.connect import connection
from vstore.db.indexes import DEFAULT_EF_SEARCH
from vstore.encode.encoder import Encoder
from vstore.errors import ConfigError, ModelMismatch
from vstore.evaluation import metrics
from vstore.evaluation.queries import (
    Queries,
    dataset_id_of,
    encode_queries,
    load_caption_sets,
    load_captions,
    load_image_ids,
    read_queries_file,
)
from vstore.evaluation.zeroshot import (
    DEFAULT_TEMPLATES,
    ZeroShotResult,
    check_templates,
    load_labelled,
    load_labelled_ids,
    split_labels,
    zero_shot,
)

DEFAULT_EVAL_METHODS = (
    "exact-numpy",
    "pgvector-hnsw",
    "pgvector-ivfflat",
    "faiss-ivf",
    "faiss-hnsw",
    "faiss-ivfpq",
)
DEFAULT_LIMIT = 1000

Progress = Callable[[str], None]


@dataclass(frozen=True)
class MethodQuality:
    """One (method, setting) pair and its metrics, keyed like 'caption_image.precision@5'."""

    method: str  # label: name plus setting, e.g. "pgvector-hnsw(ef_search=40)"
    name: str
    params: dict[str, Any]
    build_params: dict[str, Any]
    metrics: dict[str, float]


@dataclass(frozen=True)
class EvalReport:
    model: str
    random_weights: bool
    dataset: str | None
    corpus_images: int
    caption_queries: int
    image_queries: int
    image_caption_queries: int
    external_queries: int
    ks: tuple[int, ...]
    recall_ks: tuple[int, ...]
    pair_cosine_mean: float | None
    pair_cosine_max: float | None
    methods: list[MethodQuality] = field(default_factory=list)
    zero_shot: list[ZeroShotResult] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """method -> metric -> value, with the run's context beside it."""
        return {
            "methods": {m.method: m.metrics for m in self.methods},
            "settings": {m.method: {"params": m.params, "build": m.build_params} for m in self.methods},
            "zero_shot": {z.template: {"top1": z.top1, "top5": z.top5} for z in self.zero_shot},
            "diagnostics": {
                "pair_cosine_mean": self.pair_cosine_mean,
                "pair_cosine_max": self.pair_cosine_max,
            },
            "model": self.model,
            "random_weights": self.random_weights,
            "dataset": self.dataset,
            "corpus_images": self.corpus_images,
            "queries": {
                "caption_image": self.caption_queries,
                "image_image": self.image_queries,
                "image_caption": self.image_caption_queries,
                "external": self.external_queries,
            },
            "ks": list(self.ks),
            "recall_ks": list(self.recall_ks),
        }


def parse_ks(text: str | Sequence[int] | None, default: Sequence[int], option: str) -> tuple[int, ...]:
    """'1,3,5' -> (1, 3, 5): positive, deduplicated, sorted."""
    if text is None:
        return tuple(default)
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        ks = sorted({int(str(k).strip()) for k in items if str(k).strip()})
    except ValueError:
        raise ConfigError(f"{option} takes whole numbers separated by commas, e.g. 1,5,10.") from None
    if not ks or ks[0] < 1:
        raise ConfigError(f"{option} needs at least one k, each at least 1.")
    return tuple(ks)


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
) -> dict[str, float]:
    """ROC AUC and the F1-optimal distance threshold over the pairs a method returns (the ImageNet DET
    study): each labelled image searches its k nearest other images; a returned labelled image makes a
    pair, positive when the two share a label; the score is the cosine distance (smaller = positive)."""
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
    return {
        "threshold.auc": metrics.roc_auc(distances, positive),
        "threshold.distance": threshold,
        "threshold.f1": f1,
        "threshold.pairs": float(len(distances)),
    }


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


# ------------------------------------------------------------------------------------------ harness
def evaluate(
    settings: Settings,
    *,
    methods: Sequence[str] | str | None = None,
    ks: Sequence[int] = metrics.DEFAULT_PRECISION_KS,
    recall_ks: Sequence[int] = metrics.DEFAULT_RECALL_KS,
    queries_file: Path | None = None,
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    dataset: str | None = None,
    limit: int | None = DEFAULT_LIMIT,
    ef_search: Sequence[int] | None = None,
    probes: Sequence[int] | None = None,
    seed: int = 0,
    metric: str = "cosine",
    threshold: bool = False,
    encoder: Encoder | None = None,
    progress: Progress | None = None,
) -> EvalReport:
    """Run every metric for every (method, setting) pair. `ef_search` defaults to the CLI search's
    (DEFAULT_EF_SEARCH), so eval scores what search does. `encoder` (default: the database's model, loaded
    only when external queries or labelled images need text/image encoding) may be injected.
    `probes` (IVF probes / nprobe) defaults to ceil(sqrt(lists)), pgvector's suggested starting point.
    `metric` (cosine, ip, l2) picks pgvector's operator and Faiss's metric; the truth stays exact cosine.
    `threshold` adds ROC AUC and the F1-optimal distance threshold over labelled pairs, per method."""
    from vstore.compare.base import BuildOptions, load_corpus
    from vstore.compare.methods import build_method, iter_settings, parse_methods
    from vstore.db.indexes import default_nlist
    from vstore.db.migrations import require_model

    say = progress or (lambda _message: None)
    from vstore.db.indexes import check_metric

    check_metric(metric)
    ks, recall_ks = tuple(sorted(set(ks))), tuple(sorted(set(recall_ks)))
    templates = check_templates(templates)
    names = parse_methods(methods or list(DEFAULT_EVAL_METHODS))
    spec = require_model(settings)
    rng = np.random.default_rng(seed)

    def get_encoder() -> Encoder:
        nonlocal encoder
        if encoder is None:
            from vstore.encode.encoder import load_encoder

            say(f"loading {spec.label} to encode queries")
            encoder = load_encoder(spec, device=settings.device, threads=settings.threads)
        if encoder.dim != spec.dim:
            raise ModelMismatch(
                f"the query encoder gives {encoder.dim}-d vectors; the database holds {spec.dim}-d."
            )
        return encoder

    say("loading image vectors")
    corpus = load_corpus(settings, "images")
    with connection(settings) as conn:
        dataset_id = dataset_id_of(conn, dataset)
        caption_vectors, caption_images = load_captions(conn, dataset_id, limit, rng)
        image_ids = load_image_ids(conn, dataset_id, corpus.ids, limit, rng)
        labels, labelled_vectors = load_labelled(conn, dataset_id)
        labelled_ids, id_labels = load_labelled_ids(conn, dataset_id) if threshold else (np.zeros(0), [])
    caption_images_in_corpus = corpus.rows_of(caption_images) >= 0
    caption_vectors, caption_images = (
        caption_vectors[caption_images_in_corpus],
        caption_images[caption_images_in_corpus],
    )

    external = np.zeros((0, corpus.dim), np.float32)
    if queries_file is not None:
        items = read_queries_file(Path(queries_file))
        if not items:
            raise ConfigError(
                f"--queries-file {queries_file} has no queries (one text or image path a line)."
            )
        external = encode_queries(get_encoder(), items)
    queries = Queries(caption_vectors, caption_images, image_ids, external)

    pair_mean = pair_max = None
    if len(caption_images):
        image_vectors = corpus.vectors[corpus.rows_of(caption_images)]
        pair_mean, pair_max = metrics.pair_cosine_stats(caption_vectors, image_vectors)

    truth: dict[str, ExactTruth] = {}
    if len(corpus):
        exact = build_method("exact-numpy", corpus, settings)
        if len(caption_images):
            truth["caption_image"] = exact_truth(exact, corpus, caption_vectors, max(ks))
        if len(external):
            truth["external"] = exact_truth(exact, corpus, external, max(ks))

    results: list[MethodQuality] = []
    if len(corpus):
        nlist = default_nlist(len(corpus))
        options = BuildOptions(
            ef_sweep=tuple(ef_search or (DEFAULT_EF_SEARCH,)),
            probe_sweep=tuple(probes or (max(1, math.ceil(math.sqrt(nlist))),)),
            metric=metric,
        )
        for method in iter_settings(corpus, settings, names, options):
            say(f"evaluating {method.label}")
            scores = score_method(method, corpus, queries, truth, ks, recall_ks)
            if threshold and len(labelled_ids):
                scores.update(score_threshold(method, corpus, labelled_ids, id_labels))
            results.append(
                MethodQuality(
                    method.label, method.name, dict(method.params), dict(method.build_params), scores
                )
            )
        image_caption = score_image_to_caption(
            settings, corpus, names, options, dataset_id, limit, rng, recall_ks, say
        )
        for quality in results:
            quality.metrics.update(image_caption.scores.get(quality.method, {}))
    else:
        image_caption = ImageCaptionScores(0, {})

    classes = {label for item in labels for label in split_labels(item)}
    zero = zero_shot(labels, labelled_vectors, get_encoder(), templates) if len(classes) >= 2 else []
    return EvalReport(
        model=spec.label,
        random_weights=spec.random_weights,
        dataset=dataset,
        corpus_images=len(corpus),
        caption_queries=len(caption_images),
        image_queries=len(image_ids),
        image_caption_queries=image_caption.queries,
        external_queries=len(external),
        ks=ks,
        recall_ks=recall_ks,
        pair_cosine_mean=pair_mean,
        pair_cosine_max=pair_max,
        methods=results,
        zero_shot=zero,
    )


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
        ax.set_ylabel("precision@k")
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
