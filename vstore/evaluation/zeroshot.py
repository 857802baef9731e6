"""Zero-shot classification of a labelled dataset (class folders, a manifest's label column or COCO
instance categories set images.label; several labels are joined by LABEL_SEPARATOR, '|').

Each label becomes a text query through a prompt template ("{label}", "a photo of a {label}", ...); every
labelled image is classified by the label texts nearest to its embedding (cosine), and the top-1 / top-5
accuracy is reported per template. This measures the embedding model, not an index: with a handful of
labels the nearest-label search is exact, so it is computed once, not per search method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import psycopg

from vstore.db.connect import vector_array
from vstore.db.labels import LABEL_SEPARATOR
from vstore.encode.encoder import Encoder, l2_normalise
from vstore.errors import ConfigError
from vstore.evaluation.metrics import top_k_accuracy

DEFAULT_TEMPLATES = ("{label}", "a photo of a {label}")
PLACEHOLDER = "{label}"


@dataclass(frozen=True)
class ZeroShotResult:
    template: str
    top1: float
    top5: float
    images: int
    labels: int


def check_templates(templates: Sequence[str]) -> list[str]:
    """Templates must mention {label}; duplicates are dropped, order kept."""
    chosen = list(dict.fromkeys(templates or DEFAULT_TEMPLATES))
    for template in chosen:
        if PLACEHOLDER not in template:
            raise ConfigError(
                f"--template {template!r} has no {PLACEHOLDER} placeholder; "
                "write it like 'a photo of a {label}'."
            )
    return chosen


def label_text(label: str) -> str:
    """Class folder names become words: 'golden_retriever' -> 'golden retriever'."""
    return label.replace("_", " ").strip()


def prompt(template: str, label: str) -> str:
    # str.replace, not str.format: other braces in a template are text, not fields.
    return template.replace(PLACEHOLDER, label_text(label))


def split_labels(label: str) -> list[str]:
    """'cat|dog' -> ['cat', 'dog']: an image with several labels (blank parts dropped, order kept)."""
    return list(dict.fromkeys(p.strip() for p in label.split(LABEL_SEPARATOR) if p.strip()))


def load_labelled(conn: psycopg.Connection, dataset_id: int | None) -> tuple[list[str], np.ndarray]:
    """Labels and embeddings of the labelled, embedded, ok images (of one dataset, or all)."""
    rows = conn.execute(
        "SELECT label, embedding FROM public.images "
        "WHERE label IS NOT NULL AND status = 'ok' AND embedding IS NOT NULL "
        "AND (%(dataset)s::bigint IS NULL OR dataset_id = %(dataset)s::bigint) ORDER BY id",
        {"dataset": dataset_id},
    ).fetchall()
    if not rows:
        return [], np.zeros((0, 0), dtype=np.float32)
    vectors = np.stack([vector_array(r[1]) for r in rows])
    return [str(r[0]) for r in rows], l2_normalise(vectors)


def load_labelled_ids(conn: psycopg.Connection, dataset_id: int | None) -> tuple[np.ndarray, list[str]]:
    """Ids and labels of the labelled, embedded, ok images (of one dataset, or all), in id order."""
    rows = conn.execute(
        "SELECT id, label FROM public.images "
        "WHERE label IS NOT NULL AND status = 'ok' AND embedding IS NOT NULL "
        "AND (%(dataset)s::bigint IS NULL OR dataset_id = %(dataset)s::bigint) ORDER BY id",
        {"dataset": dataset_id},
    ).fetchall()
    return np.array([r[0] for r in rows], dtype=np.int64), [str(r[1]) for r in rows]


def zero_shot(
    labels: Sequence[str],
    image_vectors: np.ndarray,
    encoder: Encoder,
    templates: Sequence[str] = DEFAULT_TEMPLATES,
) -> list[ZeroShotResult]:
    """Top-1 / top-5 accuracy per template for images with known `labels` (parallel to `image_vectors`;
    'cat|dog' is an image with two labels, right at top k when either is among its k best).

    Needs at least two distinct labels (with one, every answer is right). Plain ranks: ties between
    label scores are broken by label order (see metrics.top_k_accuracy).
    """
    per_image = [split_labels(label) for label in labels]
    keep = [i for i, names in enumerate(per_image) if names]
    per_image = [per_image[i] for i in keep]
    classes = sorted({name for names in per_image for name in names})
    if len(classes) < 2:
        return []
    index = {label: i for i, label in enumerate(classes)}
    truth = [frozenset(index[name] for name in names) for names in per_image]
    image_vectors = np.asarray(image_vectors)[keep]
    images = l2_normalise(np.asarray(image_vectors, dtype=np.float32))
    results = []
    for template in check_templates(templates):
        texts = l2_normalise(encoder.encode_texts([prompt(template, label) for label in classes]))
        scores = images @ texts.T
        results.append(
            ZeroShotResult(
                template=template,
                top1=top_k_accuracy(scores, truth, 1),
                top5=top_k_accuracy(scores, truth, 5),
                images=len(per_image),
                labels=len(classes),
            )
        )
    return results
