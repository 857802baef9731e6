"""The training data: the database's caption-image pairs, split by image into a training and a held-out
set, and the batches a training step sees (one caption sampled per image; pixels through
encode/images.py with the model's training transform)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from vstore.db.sql import load
from vstore.encode.images import prepare_file
from vstore.errors import ConfigError, ImageError, NotFound


@dataclass(frozen=True)
class CaptionedImage:
    image_id: int
    path: str  # absolute
    split: str | None
    dataset: str
    caption_ids: tuple[int, ...]
    captions: tuple[str, ...]


@dataclass(frozen=True)
class Split:
    train: list[CaptionedImage]
    heldout: list[CaptionedImage]
    how: str  # e.g. "holdout 0.1 (seed 0)" or "eval split val2017"

    def describe(self) -> dict[str, Any]:
        return {
            "how": self.how,
            "train_images": len(self.train),
            "train_captions": sum(len(i.captions) for i in self.train),
            "heldout_images": len(self.heldout),
            "heldout_captions": sum(len(i.captions) for i in self.heldout),
            "heldout_image_ids": [i.image_id for i in self.heldout],
        }


def load_pairs(conn: psycopg.Connection) -> list[CaptionedImage]:
    """Searchable images that have at least one caption, in id order."""
    from vstore.encode.paths import filesystem_path

    items: dict[int, dict[str, Any]] = {}
    for image_id, root, path, split, dataset, caption_id, text in conn.execute(load("queries/train_pairs")):
        entry = items.setdefault(
            image_id,
            {"path": filesystem_path(root, path), "split": split, "dataset": dataset, "ids": [], "texts": []},
        )
        entry["ids"].append(int(caption_id))
        entry["texts"].append(text)
    return [
        CaptionedImage(int(i), e["path"], e["split"], e["dataset"], tuple(e["ids"]), tuple(e["texts"]))
        for i, e in items.items()
    ]


def split_pairs(
    items: Sequence[CaptionedImage],
    *,
    train_split: str | None = None,
    eval_split: str | None = None,
    eval_dataset: str | None = None,
    holdout: float | None = 0.1,
    seed: int = 0,
) -> Split:
    """Hold images out by split name, by dataset, or a seeded random fraction of them (by image, so no
    caption of a held-out image is ever trained on). `train_split` narrows the training images."""
    if not items:
        raise NotFound(
            "the database has no captioned images to train on; ingest a dataset with captions first "
            "(COCO annotations, .txt files beside images, or a manifest)."
        )
    if eval_split is not None and eval_dataset is not None:
        raise ConfigError("give one of --eval-split and --eval-dataset, not both.")
    if eval_split is not None or eval_dataset is not None:
        if eval_split is not None:
            held = [i for i in items if i.split == eval_split]
            how = f"eval split {eval_split}"
            known = sorted({str(i.split) for i in items})
        else:
            held = [i for i in items if i.dataset == eval_dataset]
            how = f"eval dataset {eval_dataset}"
            known = sorted({i.dataset for i in items})
        if not held:
            raise NotFound(f"no captioned images in {how}; the database has: {', '.join(known)}.")
        held_ids = {i.image_id for i in held}
        rest = [i for i in items if i.image_id not in held_ids]
    else:
        fraction = 0.1 if holdout is None else holdout
        if not 0.0 < fraction < 1.0:
            raise ConfigError("--holdout is a fraction of the images strictly between 0 and 1, e.g. 0.1.")
        ids = np.array(sorted(i.image_id for i in items), dtype=np.int64)
        count = min(max(1, round(fraction * len(ids))), len(ids) - 1)
        if count < 1:
            raise ConfigError("a held-out split needs at least 2 captioned images in the database.")
        held_ids = set(np.random.default_rng(seed).permutation(ids)[:count].tolist())
        held = [i for i in items if i.image_id in held_ids]
        rest = [i for i in items if i.image_id not in held_ids]
        how = f"holdout {fraction:g} of the images (seed {seed})"
    train = [i for i in rest if train_split is None or i.split == train_split]
    if train_split is not None:
        how += f", training on split {train_split}"
    if len(train) < 2:
        raise NotFound(
            f"only {len(train)} captioned image(s) left to train on ({how}); a contrastive step needs at "
            "least 2. Choose another split or a smaller --holdout."
        )
    return Split(train, held, how)


def epoch_order(count: int, seed: int, epoch: int) -> np.ndarray:
    """The image order of one epoch: a function of (seed, epoch) only, so a resumed run sees the same."""
    return np.random.default_rng([seed, epoch]).permutation(count)


def sample_captions(images: Sequence[CaptionedImage], seed: int, step: int) -> list[str]:
    """One caption per image, chosen by (seed, step): every caption of an image is seen over the epochs."""
    rng = np.random.default_rng([seed, step, 1])
    return [image.captions[int(rng.integers(len(image.captions)))] for image in images]


def read_pixels(images: Sequence[CaptionedImage], transform: Callable[[Any], Any]) -> np.ndarray:
    """Model inputs of a batch of images, read and decoded as ingest reads them."""
    try:
        return np.stack([prepare_file(image.path, transform) for image in images])
    except (ImageError, NotFound) as exc:
        raise ImageError(
            f"{exc} Re-run `vstore ingest` on its dataset so the database matches the files."
        ) from None
