"""CLIP-like synthetic embeddings (`vstore bench synth --profile clip`).

The `clusters` profile (synth.py) puts unit vectors around random centres that are spread all over the
sphere: IVF lists line up with the clusters and every index looks perfect. Real CLIP embeddings differ
in the ways that matter for approximate search, and this generator reproduces them:

- a modality gap: every image vector carries a common image direction and every caption a common text
  direction (the two at cosine `modality_cos`), so images and texts fill two separate narrow cones;
  text->image queries then come from outside the distribution the image index was built on.
- an anisotropic spectrum: the content lies in a Gaussian whose variance falls off as i^-alpha over a
  random orthonormal basis, so few principal components carry most of the variance (low intrinsic
  dimension) instead of noise spread evenly over all 512 axes.
- clusters of uneven size (Zipf weights, shuffled), and several captions per image, each sharing the
  image's semantic content plus a caption-specific part.

Vector = unit( sqrt(cone) * modality_direction + sqrt(semantic) * z + sqrt(private) * v ), with z the
image's semantic content (its cluster centre plus its own offset, shared by its captions) and v a
per-vector private part (what a photo shows that no caption says, or a caption's wording). Expected
cosines with unit-variance z and v: random image-image ~ cone, random image-text ~ cone*modality_cos,
true caption-image pair ~ cone*modality_cos + semantic*(shared fraction). docs/benchmarks.md lists the
statistics measured on the output next to the published CLIP figures.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from vstore.errors import ConfigError

_CHUNK = 10_000


@dataclass(frozen=True)
class ClipProfile:
    """The generator's parameters (shares of the squared norm before normalising: they sum to 1)."""

    cone: float = 0.45  # modality direction: random same-modality cosine ~ cone
    semantic: float = 0.2  # content shared by an image and its captions
    private: float = 0.35  # per-vector content (image detail, caption wording)
    modality_cos: float = 0.2  # cosine between the image and text directions: the gap
    alpha: float = 1.3  # variance of principal axis i ~ i^-alpha: low intrinsic dimension
    centre_share: float = 0.6  # share of z's variance that is the cluster centre (the rest: the image)
    zipf: float = 0.7  # cluster sizes ~ rank^-zipf (uneven: the largest of 1000 holds ~4%)
    rows_per_cluster: int = 1000


CLIP = ClipProfile()


@dataclass
class ClipVectors:
    images: np.ndarray  # float32 [n, dim], unit norm
    captions: np.ndarray  # float32 [m, dim], unit norm
    owners: np.ndarray  # int64 [m]: the image row each caption describes
    clusters: np.ndarray  # int32 [n]: each image's cluster


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


class _Spectrum:
    """Anisotropic Gaussian draws with E|x|^2 = 1: variance ~ i^-alpha along a random orthonormal basis."""

    def __init__(self, dim: int, alpha: float, rng: np.random.Generator) -> None:
        scales = np.arange(1, dim + 1, dtype=np.float64) ** -alpha
        self.scales = np.sqrt(scales / scales.sum()).astype(np.float32)
        basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        self.basis = basis.astype(np.float32)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        g = rng.standard_normal((n, len(self.scales)), dtype=np.float32) * self.scales
        return g @ self.basis.T


def _modality_directions(dim: int, cos: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    image, other = _unit(rng.standard_normal((2, dim))).astype(np.float64)
    other = _unit((other - (other @ image) * image)[None])[0]  # orthogonal to the image direction
    text = cos * image + np.sqrt(1.0 - cos**2) * other
    return image.astype(np.float32), text.astype(np.float32)


def cluster_weights(clusters: int, zipf: float, rng: np.random.Generator) -> np.ndarray:
    """Probabilities ~ rank^-zipf, shuffled so cluster ids carry no size order."""
    weights = np.arange(1, clusters + 1, dtype=np.float64) ** -zipf
    rng.shuffle(weights)
    return weights / weights.sum()


def captioned_rows(rows: int, sample: int | None) -> np.ndarray:
    """The image rows that get captions: all, or `sample` of them evenly spaced (queries at scale)."""
    if sample is None or sample >= rows:
        return np.arange(rows, dtype=np.int64)
    return np.unique(np.linspace(0, rows - 1, num=max(sample, 0), dtype=np.int64))


class ClipGenerator:
    """Streams a CLIP-like dataset: `image_chunks()` yields the image vectors 10k rows at a time (the
    loader COPYs each chunk, so the client's memory stays flat at 1M rows), then `captions()` gives the
    caption vectors of the images of `captioned_rows`. Deterministic for a seed."""

    def __init__(
        self,
        n: int,
        dim: int,
        *,
        captions_per_image: int = 5,
        caption_sample: int | None = None,
        clusters: int | None = None,
        profile: ClipProfile = CLIP,
        seed: int = 0,
    ) -> None:
        if n < 1 or dim < 2 or captions_per_image < 0:
            raise ConfigError("clip_vectors needs n >= 1, dim >= 2 and captions_per_image >= 0.")
        shares = profile.cone + profile.semantic + profile.private
        if abs(shares - 1.0) > 1e-6 or min(profile.cone, profile.semantic, profile.private) < 0:
            raise ConfigError("a CLIP profile's cone, semantic and private shares must be >= 0 and sum to 1.")
        self.n, self.dim, self.per_image, self.profile = n, dim, captions_per_image, profile
        self.rng = np.random.default_rng(seed)
        k = clusters or max(8, n // profile.rows_per_cluster)
        self.spectrum = _Spectrum(dim, profile.alpha, self.rng)
        self.image_dir, self.text_dir = _modality_directions(dim, profile.modality_cos, self.rng)
        self.centres = self.spectrum.draw(self.rng, k)
        self.clusters = self.rng.choice(k, size=n, p=cluster_weights(k, profile.zipf, self.rng)).astype(
            np.int32
        )
        self.captioned = captioned_rows(n, caption_sample)
        self.owners = np.repeat(self.captioned, captions_per_image)
        self._kept_z = np.empty((len(self.captioned), dim), dtype=np.float32)
        self._images_done = False

    def _weights(self) -> tuple[np.float32, ...]:
        p = self.profile
        return tuple(
            np.float32(np.sqrt(x))
            for x in (p.cone, p.semantic, p.private, p.centre_share, 1.0 - p.centre_share)
        )

    def image_chunks(self) -> Iterator[np.ndarray]:
        """float32 [<=10k, dim] unit rows, in row order; keeps the semantic part of captioned images."""
        a, s, p, c, o = self._weights()
        keep = np.zeros(self.n, dtype=bool)
        keep[self.captioned] = True
        filled = 0
        for start in range(0, self.n, _CHUNK):  # chunks bound the temporaries at 1M x 512
            stop = min(self.n, start + _CHUNK)
            z = c * self.centres[self.clusters[start:stop]] + o * self.spectrum.draw(self.rng, stop - start)
            yield _unit(a * self.image_dir + s * z + p * self.spectrum.draw(self.rng, stop - start))
            chosen = keep[start:stop]
            self._kept_z[filled : filled + int(chosen.sum())] = z[chosen]
            filled += int(chosen.sum())
        self._images_done = True

    def captions(self) -> np.ndarray:
        """float32 [len(owners), dim]: each caption shares its image's semantic part (after the images)."""
        if not self._images_done:
            raise ConfigError("generate the image chunks before the captions (they share their content).")
        a, s, p, _, _ = self._weights()
        z_rep = np.repeat(self._kept_z, self.per_image, axis=0)
        out = np.empty((len(self.owners), self.dim), dtype=np.float32)
        for start in range(0, len(self.owners), _CHUNK):
            stop = min(len(self.owners), start + _CHUNK)
            private = self.spectrum.draw(self.rng, stop - start)
            out[start:stop] = _unit(a * self.text_dir + s * z_rep[start:stop] + p * private)
        return out


def clip_vectors(
    n: int,
    dim: int,
    *,
    captions_per_image: int = 5,
    caption_sample: int | None = None,
    clusters: int | None = None,
    profile: ClipProfile = CLIP,
    seed: int = 0,
) -> ClipVectors:
    """`n` image vectors and `captions_per_image` caption vectors for each image of `captioned_rows`,
    all in memory (ClipGenerator streams them)."""
    gen = ClipGenerator(
        n,
        dim,
        captions_per_image=captions_per_image,
        caption_sample=caption_sample,
        clusters=clusters,
        profile=profile,
        seed=seed,
    )
    images = np.concatenate(list(gen.image_chunks()))
    return ClipVectors(images, gen.captions(), gen.owners, gen.clusters)


@dataclass(frozen=True)
class ClipStats:
    """What the profile is meant to reproduce, measured on generated vectors."""

    pair_cos: float  # mean cosine of a caption with its own image
    image_text_cos: float  # mean cosine of random image-caption pairs
    image_image_cos: float  # mean cosine of random image pairs
    text_text_cos: float  # mean cosine of random caption pairs
    image_cone_cos: float  # mean cosine of an image with the images' mean direction (cone width)
    text_cone_cos: float
    gap: float  # distance between the modality centroids (Liang et al.'s "modality gap")
    pca90: int  # principal components holding 90% of the image vectors' variance
    nn_cos: float  # mean cosine of an image to its nearest other image (within the sample)
    largest_cluster_share: float
    smallest_cluster_share: float


def clip_stats(vectors: ClipVectors, *, sample: int = 2000, seed: int = 0) -> ClipStats:
    rng = np.random.default_rng(seed)
    images, captions, owners = vectors.images, vectors.captions, vectors.owners
    a = rng.integers(0, len(images), sample)
    b = rng.integers(0, len(images), sample)
    t = rng.integers(0, len(captions), sample)
    u = rng.integers(0, len(captions), sample)
    rowdot = lambda x, y: float(np.mean(np.sum(x * y, axis=1)))  # noqa: E731
    image_mean, text_mean = images.mean(axis=0), captions.mean(axis=0)
    centred = images[rng.choice(len(images), min(len(images), 20_000), replace=False)]
    centred = centred - centred.mean(axis=0)
    variance = np.linalg.svd(centred, compute_uv=False) ** 2
    pca90 = int(np.searchsorted(np.cumsum(variance) / variance.sum(), 0.9) + 1)
    probe = images[a[: min(sample, 500)]]
    sims = probe @ images.T
    sims[np.arange(len(probe)), a[: len(probe)]] = -2.0  # not itself
    sizes = np.bincount(vectors.clusters) / len(vectors.clusters)
    sizes = sizes[sizes > 0]
    return ClipStats(
        pair_cos=rowdot(captions[t], images[owners[t]]),
        image_text_cos=rowdot(images[a], captions[t]),
        image_image_cos=rowdot(images[a], images[b]),
        text_text_cos=rowdot(captions[t], captions[u]),
        image_cone_cos=float(np.mean(images[a] @ _unit(image_mean[None])[0])),
        text_cone_cos=float(np.mean(captions[t] @ _unit(text_mean[None])[0])),
        gap=float(np.linalg.norm(image_mean - text_mean)),
        pca90=pca90,
        nn_cos=float(np.mean(sims.max(axis=1))),
        largest_cluster_share=float(sizes.max()),
        smallest_cluster_share=float(sizes.min()),
    )
