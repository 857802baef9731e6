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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vstore.config import Settings
from vstore.db.connect import connection
from vstore.db.datasets import dataset_id as find_dataset_id
from vstore.db.indexes import DEFAULT_EF_SEARCH
from vstore.encode.encoder import Encoder
from vstore.errors import ConfigError, ModelMismatch
from vstore.evaluation import metrics
from vstore.evaluation.queries import (
    Queries,
    encode_queries,
    load_captions,
    load_image_ids,
    read_queries_file,
)
from vstore.evaluation.scoring import (
    ExactTruth,
    ImageCaptionScores,
    exact_truth,
    score_image_to_caption,
    score_method,
    score_threshold,
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
    roc: list[tuple[float, float]] = field(default_factory=list)  # with --threshold: (FPR, TPR) points


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
    zero_shot_skipped: str | None = None  # why there is no zero-shot block (no labels, one label)

    def as_json(self) -> dict[str, Any]:
        """method -> metric -> value, with the run's context beside it."""
        return {
            "methods": {m.method: m.metrics for m in self.methods},
            "settings": {m.method: {"params": m.params, "build": m.build_params} for m in self.methods},
            "zero_shot": {z.template: {"top1": z.top1, "top5": z.top5} for z in self.zero_shot},
            "zero_shot_skipped": self.zero_shot_skipped,
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
        dataset_id = find_dataset_id(conn, dataset)
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
            roc: list[tuple[float, float]] = []
            if threshold and len(labelled_ids):
                figures, roc = score_threshold(method, corpus, labelled_ids, id_labels)
                scores.update(figures)
            results.append(
                MethodQuality(
                    method.label, method.name, dict(method.params), dict(method.build_params), scores, roc
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
    skipped = None
    if not zero:
        skipped = (
            "no labelled images (labels come from class folders, COCO categories or a manifest label column)"
            if not classes
            else f"the labelled images carry one label only ({next(iter(classes))!r}); zero-shot needs two"
        )
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
        zero_shot_skipped=skipped,
    )
