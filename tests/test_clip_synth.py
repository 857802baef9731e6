"""The CLIP-like synthetic profile: its statistics on 20k rows stay within the bounds docs/benchmarks.md
states, the clusters profile does not reproduce them, and the loader writes what the profile makes."""

from __future__ import annotations

import numpy as np
import pytest

from vstore.bench.clip_synth import ClipProfile, ClipVectors, captioned_rows, clip_stats, clip_vectors
from vstore.bench.synth import _caption_vectors, load_synthetic, synth_vectors
from vstore.db.connect import connection
from vstore.errors import ConfigError


@pytest.fixture(scope="module")
def clip20k() -> ClipVectors:
    return clip_vectors(20_000, 512, captions_per_image=2, seed=0)


def test_clip_profile_statistics_on_20k_rows_are_within_the_documented_bounds(clip20k):
    stats = clip_stats(clip20k)
    assert 0.25 <= stats.pair_cos <= 0.35  # CLIP ViT-B/32 matched caption-image cosine ~0.3
    assert 0.05 <= stats.image_text_cos <= 0.18  # random image-text: lower than a true pair
    assert stats.pair_cos - stats.image_text_cos >= 0.1
    assert 0.4 <= stats.image_image_cos <= 0.6  # random image-image ~0.5: a narrow cone
    assert 0.4 <= stats.text_text_cos <= 0.6
    assert 0.6 <= stats.image_cone_cos <= 0.8 and 0.6 <= stats.text_cone_cos <= 0.8
    assert stats.gap >= 0.6  # the two cones apart: text queries are out of the images' distribution
    assert 40 <= stats.pca90 <= 150  # of 512 dimensions: low intrinsic dimension
    assert stats.nn_cos >= 0.75  # images do have close neighbours
    assert stats.largest_cluster_share >= 4 * stats.smallest_cluster_share  # uneven clusters


def test_clusters_profile_has_neither_the_gap_nor_the_low_dimension():
    images = synth_vectors(20_000, 512, seed=0)
    captions, owners = _caption_vectors(images, 1, 0, np.arange(20_000))
    stats = clip_stats(ClipVectors(images, captions, owners, np.zeros(20_000, np.int32)))
    assert stats.image_image_cos < 0.2 and stats.gap < 0.2 and stats.pca90 > 150


def test_clip_vectors_are_deterministic_unit_and_captions_belong_to_sampled_images():
    a = clip_vectors(3000, 64, captions_per_image=3, caption_sample=100, seed=4)
    b = clip_vectors(3000, 64, captions_per_image=3, caption_sample=100, seed=4)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.captions, b.captions)
    assert np.allclose(np.linalg.norm(a.images, axis=1), 1, atol=1e-5)
    assert np.allclose(np.linalg.norm(a.captions, axis=1), 1, atol=1e-5)
    assert len(a.captions) == 300 and set(a.owners) == set(captioned_rows(3000, 100))
    # a caption is nearer to its own image than to another captioned image
    own = np.sum(a.captions * a.images[a.owners], axis=1)
    other = np.sum(a.captions * a.images[np.roll(a.owners, 3)], axis=1)
    assert own.mean() - other.mean() > 0.1 and np.mean(own > other) > 0.6
    with pytest.raises(ConfigError, match="sum to 1"):
        clip_vectors(10, 8, profile=ClipProfile(cone=0.9))


def test_load_synthetic_clip_profile_samples_captions(settings):
    report = load_synthetic(settings, 400, profile="clip", caption_sample=40, seed=1)
    assert (report.images, report.captions) == (400, 200)  # 5 captions for each of 40 images
    with connection(settings) as conn:
        per_image = conn.execute(
            "SELECT count(DISTINCT image_id), min(n), max(n) FROM "
            "(SELECT image_id, count(*) AS n FROM captions GROUP BY image_id) AS c"
        ).fetchone()
        gap = conn.execute(
            "SELECT avg(i.embedding <=> c.embedding) FROM captions c JOIN images i ON i.id = c.image_id"
        ).fetchone()[0]
    assert per_image == (40, 5, 5)
    assert 0.6 <= gap <= 0.8  # cosine distance of true pairs ~0.7 (similarity ~0.3), also at 32-d
    with pytest.raises(ConfigError, match="unknown synthetic profile"):
        load_synthetic(settings, 10, profile="uniform")


def test_the_generator_streams_the_same_rows_in_bounded_chunks():
    from vstore.bench.clip_synth import ClipGenerator

    whole = clip_vectors(25_000, 16, captions_per_image=2, caption_sample=30, seed=9)
    gen = ClipGenerator(25_000, 16, captions_per_image=2, caption_sample=30, seed=9)
    with pytest.raises(ConfigError, match="image chunks before the captions"):
        gen.captions()
    chunks = list(gen.image_chunks())
    assert [len(c) for c in chunks] == [10_000, 10_000, 5_000]  # the loader holds one chunk at a time
    assert np.array_equal(np.concatenate(chunks), whole.images)
    assert np.array_equal(gen.captions(), whole.captions) and np.array_equal(gen.owners, whole.owners)


def test_the_clusters_profile_streams_too_with_captions_beside_their_images():
    from vstore.bench.synth import _sources, synth_chunks

    chunks = list(synth_chunks(25_000, 16, seed=4))
    assert [(start, len(c)) for start, c in chunks] == [(0, 10_000), (10_000, 10_000), (20_000, 5_000)]
    whole = synth_vectors(25_000, 16, seed=4)
    assert all(c.dtype == np.float32 for _, c in chunks)
    assert np.array_equal(np.concatenate([c for _, c in chunks]), whole)
    rows, captions_of = _sources("clusters", 25_000, 16, 2, 30, None, 4)
    with pytest.raises(ConfigError, match="image rows before the captions"):
        captions_of()
    assert np.array_equal(np.asarray(list(rows)), whole)
    vectors, owners = captions_of()
    assert np.array_equal(owners, np.repeat(captioned_rows(25_000, 30), 2))
    expected, _ = _caption_vectors(whole, 2, 4, captioned_rows(25_000, 30))
    assert np.array_equal(vectors, expected)  # the same captions as from the whole matrix
    assert np.einsum("ij,ij->i", vectors, whole[owners]).min() > 0.7  # each caption near its image
