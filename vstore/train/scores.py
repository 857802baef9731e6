"""Retrieval scores of a model on the held-out split, before and after fine-tuning.

Both directions as CLIP_benchmark / open_clip's retrieval evaluation count them with several captions per
image: caption->image R@k is the share of captions whose image is among the k nearest images;
image->caption R@k the share of images with at least one of their own captions among the k nearest
captions. Both are vstore's internal precision@k (evaluation/metrics.py), which is what computes them here.
Optionally, caption->image precision@k against every searchable image of the database: what
`vstore eval --dataset NAME --methods exact-numpy --limit 0` reports once the vectors are switched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vstore.compare.base import top_k
from vstore.encode.encoder import Encoder
from vstore.evaluation.metrics import DEFAULT_PRECISION_KS, precision_at_ks
from vstore.train.data import CaptionedImage, read_pixels

RECALL_KS = (1, 5, 10)
ENCODE_BATCH = 64


def encode_images(encoder: Encoder, paths: Sequence[CaptionedImage]) -> np.ndarray:
    transform = encoder.image_transform()
    out = np.zeros((len(paths), encoder.dim), dtype=np.float32)
    for start in range(0, len(paths), ENCODE_BATCH):
        batch = paths[start : start + ENCODE_BATCH]
        out[start : start + len(batch)] = encoder.encode_images(read_pixels(batch, transform))
    return out


def encode_texts(encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
    out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    for start in range(0, len(texts), ENCODE_BATCH):
        batch = list(texts[start : start + ENCODE_BATCH])
        out[start : start + len(batch)] = encoder.encode_texts(batch)
    return out


def _ranked(queries: np.ndarray, corpus: np.ndarray, corpus_ids: np.ndarray, k: int) -> list[list[int]]:
    return [list(row) for row in corpus_ids[top_k(queries @ corpus.T, k)]]


def retrieval_scores(
    encoder: Encoder,
    heldout: Sequence[CaptionedImage],
    searchable: Sequence[CaptionedImage] | None = None,
) -> dict[str, float]:
    """Metric name -> value for a model on the held-out images and captions (and, given `searchable`,
    caption->image precision@k of the held-out captions against those images, keys 'search.*')."""
    image_ids = np.array([i.image_id for i in heldout], dtype=np.int64)
    image_vectors = encode_images(encoder, heldout)
    texts = [text for image in heldout for text in image.captions]
    caption_ids = np.array([c for image in heldout for c in image.caption_ids], dtype=np.int64)
    caption_images = [image.image_id for image in heldout for _ in image.captions]
    caption_vectors = encode_texts(encoder, texts)
    own_captions = [set(image.caption_ids) for image in heldout]

    ks = sorted(set(RECALL_KS) | set(DEFAULT_PRECISION_KS))
    ranked_images = _ranked(caption_vectors, image_vectors, image_ids, max(ks))
    to_image = precision_at_ks(ranked_images, caption_images, ks)
    to_caption = precision_at_ks(
        _ranked(image_vectors, caption_vectors, caption_ids, max(RECALL_KS)), own_captions, RECALL_KS
    )
    scores: dict[str, float] = {}
    for k in RECALL_KS:
        scores[f"caption_image.R@{k}"] = to_image[k]
        scores[f"image_caption.R@{k}"] = to_caption[k]
        scores[f"chance.caption_image.R@{k}"] = min(k / len(heldout), 1.0)
    for k in DEFAULT_PRECISION_KS:
        scores[f"caption_image.precision@{k}"] = to_image[k]
    if searchable is not None:
        corpus_ids = np.array([i.image_id for i in searchable], dtype=np.int64)
        corpus = encode_images(encoder, searchable)
        ranked = _ranked(caption_vectors, corpus, corpus_ids, max(DEFAULT_PRECISION_KS))
        for k, value in precision_at_ks(ranked, caption_images, DEFAULT_PRECISION_KS).items():
            scores[f"search.caption_image.precision@{k}"] = value
    return scores


def gains(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    return {key: after[key] - before[key] for key in after if key in before and not key.startswith("chance")}
