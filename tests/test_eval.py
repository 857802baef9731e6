"""vstore eval on hand-made vectors inserted straight into the test database (no ingest pipeline):
known precision, NDCG 1.0 for exact methods, zero-shot with a deterministic encoder, the CLI end to end."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from tests.conftest import TINY_SPEC
from vstore.config import Settings
from vstore.db.connect import connection
from vstore.encode.encoder import l2_normalise
from vstore.errors import ConfigError, NotFound
from vstore.evaluation.harness import evaluate

DIM = 32


def unit_vectors(n: int, seed: int) -> np.ndarray:
    return l2_normalise(np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32))


def insert(
    settings: Settings,
    image_vectors: np.ndarray,
    captions: Sequence[tuple[int, np.ndarray]] = (),
    labels: Sequence[str | None] | None = None,
    dataset: str = "hand",
) -> list[int]:
    """Rows of one dataset: images with embeddings (and labels), captions (image index, vector)."""
    with connection(settings) as conn:
        dataset_id = conn.execute(
            "INSERT INTO datasets (name, root, format) VALUES (%s, '/nowhere', 'folder') RETURNING id",
            (dataset,),
        ).fetchone()[0]
        ids = []
        for i, vector in enumerate(image_vectors):
            label = labels[i] if labels else None
            ids.append(
                conn.execute(
                    "INSERT INTO images (dataset_id, path, label, embedding) "
                    "VALUES (%s, %s, %s, %s) RETURNING id",
                    (dataset_id, f"{dataset}/{i}.jpg", label, np.asarray(vector, np.float32)),
                ).fetchone()[0]
            )
        for j, (image_index, vector) in enumerate(captions):
            conn.execute(
                "INSERT INTO captions (image_id, source_id, text, embedding) VALUES (%s, %s, %s, %s)",
                (ids[image_index], str(j), f"caption {j}", np.asarray(vector, np.float32)),
            )
        conn.commit()
    return ids


class FakeEncoder:
    """Deterministic: known texts map to given vectors, any other text to a vector seeded by its bytes."""

    spec = TINY_SPEC
    device = "cpu"
    dim = DIM

    def __init__(self, known: dict[str, np.ndarray] | None = None) -> None:
        self.known = known or {}
        self.seen: list[str] = []

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.seen += list(texts)
        out = []
        for text in texts:
            if text in self.known:
                out.append(self.known[text])
            else:
                seed = int.from_bytes(text.encode()[:8].ljust(8, b"\0"), "little") + len(text)
                out.append(unit_vectors(1, seed)[0])
        return l2_normalise(np.stack(out))

    def image_transform(self) -> Any:
        return lambda image: np.asarray(image.resize((4, 4)), np.float32).reshape(-1)[:DIM] / 255.0

    def encode_images(self, pixels: Any) -> np.ndarray:
        return l2_normalise(np.asarray(pixels, np.float32) + 1e-3)

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2


def orthonormal(n: int, seed: int) -> np.ndarray:
    """n <= 32 orthonormal vectors in a random rotation: unrelated images have cosine 0."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((DIM, DIM)))
    return q.T[:n].astype(np.float32)


def controlled_set(settings: Settings, n: int = 32) -> list[int]:
    """n orthonormal images; caption i is its image's vector when i is even, and leans towards image i+1
    (cos 0.8 vs 0.6) when odd: exact caption->image precision@1 = 0.5 and precision@3 = 1.0."""
    images = orthonormal(n, seed=1)
    captions = []
    for i in range(n):
        vector = images[i] if i % 2 == 0 else 0.8 * images[(i + 1) % n] + 0.6 * images[i]
        captions.append((i, vector / np.linalg.norm(vector)))
    return insert(settings, images, captions)


ANSWER_EXACTLY = [
    "exact-numpy",
    "pgvector-exact",
    "pgvector-hnsw",
    "pgvector-ivfflat",
    "faiss-flat",
    "faiss-hnsw",
]


def test_precision_and_recall_match_the_known_answer_for_every_method(settings):
    controlled_set(settings)
    report = evaluate(
        settings, methods=ANSWER_EXACTLY + ["faiss-ivf", "faiss-ivfpq"], ks=(1, 3), recall_ks=(1, 10)
    )
    assert report.caption_queries == 32 and report.image_queries == 32
    by_name = {m.name: m.metrics for m in report.methods}
    assert set(by_name) == set(ANSWER_EXACTLY) | {"faiss-ivf", "faiss-ivfpq"}
    for name in ANSWER_EXACTLY + ["faiss-ivf"]:
        got = by_name[name]
        assert got["caption_image.precision@1"] == pytest.approx(0.5), name
        assert got["caption_image.precision@3"] == pytest.approx(1.0), name
        assert got["caption_image.recall@1"] == pytest.approx(0.5), name
        assert got["caption_image.recall@10"] == pytest.approx(1.0), name
        assert got["caption_image.returned@10"] == pytest.approx(1.0), name
    # IVF-PQ compresses the vectors (few rows: few bits), so it is only required to produce valid scores.
    assert all(0.0 <= v <= 1.0 for k, v in by_name["faiss-ivfpq"].items() if ".ndcg@" not in k)


def test_recall_at_k_beyond_ef_search_is_searched_with_ef_search_raised_to_k(settings):
    # pgvector's HNSW returns at most hnsw.ef_search rows: at ef_search 1, recall@10 counted from one row
    # would be 0.5 (the odd captions' image is second). Searched with ef_search >= K, it is 1.0.
    controlled_set(settings)
    report = evaluate(
        settings, methods=["pgvector-hnsw"], ks=(1, 3), recall_ks=(1, 10), ef_search=[1], limit=None
    )
    got = report.methods[0].metrics
    assert report.methods[0].method == "pgvector-hnsw(ef_search=1)"
    assert got["caption_image.recall@10"] == pytest.approx(1.0)
    assert got["caption_image.returned@10"] == pytest.approx(1.0)
    # precision@k keeps the setting under test: one row per query, so precision@3 stays at precision@1.
    assert got["caption_image.precision@3"] == pytest.approx(got["caption_image.precision@1"])


def e(i: int) -> np.ndarray:
    vector = np.zeros(DIM, np.float32)
    vector[i] = 1.0
    return vector


def test_ndcg_relevance_is_cosine_to_the_exact_top1_with_a_known_answer(settings, tmp_path):
    # Images A = e0, B = 0.6 e0 + 0.8 e1, C = 0.8 e0 + 0.6 e2, D = e3. The query q = e0 + 0.1 e1 ranks them
    # A, C, B exactly; Y = A, so rel = cos(., A): A 1.0, C 0.8, B 0.6. pgvector HNSW at ef_search 1
    # returns A alone: NDCG@3 = (2^1 - 1) / IDCG, IDCG = 1 + (2^0.8 - 1)/log2(3) + (2^0.6 - 1)/2.
    images = np.stack([e(0), 0.6 * e(0) + 0.8 * e(1), 0.8 * e(0) + 0.6 * e(2), e(3)])
    insert(settings, images)
    query = e(0) + 0.1 * e(1)
    (tmp_path / "q.txt").write_text("the query\n")
    report = evaluate(
        settings,
        methods=["exact-numpy", "pgvector-hnsw"],
        ks=(1, 3),
        recall_ks=(1,),
        ef_search=[1],
        queries_file=tmp_path / "q.txt",
        encoder=FakeEncoder({"the query": query}),
    )
    by_name = {m.name: m.metrics for m in report.methods}
    idcg = 1 + (2**0.8 - 1) / math.log2(3) + (2**0.6 - 1) / 2
    assert by_name["exact-numpy"]["external.ndcg@3"] == pytest.approx(1.0)
    assert by_name["pgvector-hnsw"]["external.ndcg@3"] == pytest.approx(1 / idcg)
    assert by_name["pgvector-hnsw"]["external.ndcg@3"] == pytest.approx(0.5796, abs=1e-4)
    assert by_name["pgvector-hnsw"]["external.precision@1"] == pytest.approx(1.0)
    # The query-relevance variant gives another figure for the same list.
    assert by_name["pgvector-hnsw"]["external.query_ndcg@3"] != pytest.approx(1 / idcg, abs=1e-3)


def test_image_to_caption_recall_counts_every_caption_of_the_image(settings):
    # Images e0..e3. Captions: image 0 {e0, 0.6 e0 + 0.8 e4}; image 1 {e1}; image 2 {0.6 e2 + 0.8 e3,
    # 0.3 e2 + 0.954 e5}; image 3 {e3}. Query image 0 finds its two captions at ranks 1-2: recall@1 = 1/2,
    # @2 = 1; image 1: 1, 1; image 2 (cosines 0.6, 0.3, rest 0): 1/2, 1; image 3 (its own caption 1.0,
    # image 2's first 0.8): 1, 1. Mean recall@1 = 0.75, recall@2 = 1.0.
    images = np.stack([e(0), e(1), e(2), e(3)])
    unit = l2_normalise
    captions = [
        (0, e(0)),
        (0, unit((0.6 * e(0) + 0.8 * e(4))[None])[0]),
        (1, e(1)),
        (2, unit((0.6 * e(2) + 0.8 * e(3))[None])[0]),
        (2, unit((0.3 * e(2) + 0.954 * e(5))[None])[0]),
        (3, e(3)),
    ]
    insert(settings, images, captions)
    report = evaluate(
        settings, methods=["exact-numpy", "pgvector-hnsw", "faiss-flat"], ks=(1,), recall_ks=(1, 2)
    )
    assert report.image_caption_queries == 4
    for quality in report.methods:
        assert quality.metrics["image_caption.recall@1"] == pytest.approx(0.75), quality.method
        assert quality.metrics["image_caption.recall@2"] == pytest.approx(1.0), quality.method
        # caption -> image has one relevant image per caption: there recall@1 is precision@1 (5/6 here:
        # only 0.6 e2 + 0.8 e3 lands on image 3).
        assert quality.metrics["caption_image.recall@1"] == pytest.approx(5 / 6), quality.method


def test_pair_cosine_diagnostic_is_mean_and_max_over_true_pairs(settings):
    controlled_set(settings, n=10)
    report = evaluate(settings, methods=["exact-numpy"], ks=(1,), recall_ks=(1,))
    images = orthonormal(10, seed=1)
    odd = [
        float(images[i] @ (v := 0.8 * images[(i + 1) % 10] + 0.6 * images[i]) / np.linalg.norm(v))
        for i in range(1, 10, 2)
    ]
    assert report.pair_cosine_max == pytest.approx(1.0, abs=1e-5)
    assert report.pair_cosine_mean == pytest.approx((5 * 1.0 + sum(odd)) / 10, abs=1e-5)


def test_external_image_queries_are_read_from_paths_in_the_queries_file(settings, tmp_path):
    from PIL import Image

    insert(settings, unit_vectors(20, seed=3))
    Image.new("RGB", (8, 8), (200, 30, 90)).save(tmp_path / "query.png")
    (tmp_path / "queries.txt").write_text("query.png\na text query\n")
    encoder = FakeEncoder()
    report = evaluate(
        settings, methods=["exact-numpy"], ks=(1,), queries_file=tmp_path / "queries.txt", encoder=encoder
    )
    assert report.external_queries == 2
    assert encoder.seen == ["a text query"]  # the image line went through the image tower
    assert report.methods[0].metrics["external.precision@1"] == pytest.approx(1.0)


LABELS = ["cat", "dog", "bird", "fish", "horse", "sea_lion"]


def test_zero_shot_accuracy_per_template_with_a_deterministic_encoder(settings):
    label_vectors = unit_vectors(len(LABELS), seed=4)
    noise = np.random.default_rng(5).standard_normal((len(LABELS) * 4, DIM)).astype(np.float32) * 0.05
    images = l2_normalise(np.repeat(label_vectors, 4, axis=0) + noise)
    labels = [label for label in LABELS for _ in range(4)]
    insert(settings, images, labels=labels)
    known = {}
    for j, label in enumerate(LABELS):
        words = label.replace("_", " ")
        known[f"a photo of a {words}"] = label_vectors[j]  # the right vector
        known[words] = label_vectors[(j + 1) % len(LABELS)]  # the bare label points at the next class
    encoder = FakeEncoder(known)
    report = evaluate(settings, methods=["exact-numpy"], ks=(1,), recall_ks=(1,), encoder=encoder)
    by_template = {z.template: z for z in report.zero_shot}
    assert set(by_template) == {"{label}", "a photo of a {label}"}
    assert by_template["a photo of a {label}"].top1 == pytest.approx(1.0)
    assert by_template["a photo of a {label}"].top5 == pytest.approx(1.0)
    assert by_template["{label}"].top1 == pytest.approx(0.0)
    assert by_template["a photo of a {label}"].images == 24 and by_template["{label}"].labels == 6
    assert "a photo of a sea lion" in encoder.seen  # folder names become words


def test_zero_shot_counts_an_image_with_several_labels_right_when_any_is_top(settings):
    # Label texts: cat = e0, dog = e1, fish = e2. Image 0 'cat|dog' (0.8 e1 + 0.6 e2): dog first, a hit.
    # Image 1 'fish' (0.8 e0 + 0.6 e2): cat first, a miss. Image 2 'cat|fish' (e1): dog first, a miss.
    # Image 3 'dog' (e1): a hit. top-1 = 2/4.
    images = np.stack([0.8 * e(1) + 0.6 * e(2), 0.8 * e(0) + 0.6 * e(2), e(1), e(1)])
    insert(settings, images, labels=["cat|dog", "fish", "cat|fish", "dog"])
    known = {"a photo of a cat": e(0), "a photo of a dog": e(1), "a photo of a fish": e(2)}
    encoder = FakeEncoder(known)
    report = evaluate(settings, methods=["exact-numpy"], templates=["a photo of a {label}"], encoder=encoder)
    (result,) = report.zero_shot
    assert (result.images, result.labels) == (4, 3)
    assert result.top1 == pytest.approx(0.5)
    assert result.top5 == pytest.approx(1.0)
    assert sorted(set(encoder.seen)) == sorted(known)  # 'cat|dog' is two labels, not a third class


def test_threshold_gives_the_hand_computed_roc_auc_and_f1_optimal_distance(settings):
    # cats e0, 0.8 e0 + 0.6 e1, 0.6 e0 + 0.8 e3; dogs e2, 0.6 e0 + 0.8 e2. Each image's 4 others give 20
    # ordered pairs: positives at distance 0.2 (x4), 0.4 (x2), 0.52 (x2); negatives at 0.4 (x2), 0.52 (x2),
    # 0.64 (x2), 1.0 (x6). AUC = (4*12 + 2*11 + 2*9) / (8*12) = 88/96; F1 is best at 0.52: 2*8/(12+8) = 0.8.
    images = np.stack([e(0), 0.8 * e(0) + 0.6 * e(1), 0.6 * e(0) + 0.8 * e(3), e(2), 0.6 * e(0) + 0.8 * e(2)])
    insert(settings, images, labels=["cat", "cat", "cat", "dog", "dog"])
    report = evaluate(
        settings,
        methods=["exact-numpy", "pgvector-hnsw"],
        ks=(1,),
        recall_ks=(1,),
        threshold=True,
        encoder=FakeEncoder(),
    )
    for quality in report.methods:
        got = quality.metrics
        assert got["threshold.pairs"] == 20, quality.method
        assert got["threshold.auc"] == pytest.approx(88 / 96), quality.method
        assert got["threshold.distance"] == pytest.approx(0.52, abs=1e-5), quality.method
        assert got["threshold.f1"] == pytest.approx(0.8), quality.method
        assert quality.roc[0] == (0.0, 0.0) and quality.roc[-1] == (1.0, 1.0)
        # at distance 0.2 four of eight positives and no negative: the curve's first step
        assert quality.roc[1] == (0.0, 0.5)


def test_cli_threshold_prints_the_table_and_writes_the_roc_plot(settings, tmp_path, monkeypatch, capsys):
    from vstore.cli import main

    insert(settings, np.stack([e(0), e(1), 0.6 * e(0) + 0.8 * e(1), e(2)]), labels=["a", "b", "a|b", "c"])
    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    png = tmp_path / "roc.png"
    args = ["eval", "--methods", "exact-numpy", "--k", "1", "--recall-k", "1", "--threshold", "--roc-plot"]
    assert main([*args, str(png)]) == 0
    out = capsys.readouterr().out
    assert "ROC AUC" in out and "F1-best distance" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_custom_templates_replace_the_defaults_and_need_a_placeholder(settings):
    insert(settings, unit_vectors(4, seed=6), labels=["a", "a", "b", "b"])
    report = evaluate(
        settings, methods=["exact-numpy"], templates=["a sketch of a {label}"], encoder=FakeEncoder()
    )
    assert [z.template for z in report.zero_shot] == ["a sketch of a {label}"]
    with pytest.raises(ConfigError):
        evaluate(settings, methods=["exact-numpy"], templates=["no placeholder"], encoder=FakeEncoder())


def test_dataset_narrows_the_queries_and_an_unknown_dataset_is_refused(settings):
    controlled_set(settings, n=10)
    insert(settings, unit_vectors(6, seed=7), dataset="other")
    report = evaluate(settings, methods=["exact-numpy"], dataset="other", ks=(1,), recall_ks=(1,))
    assert report.corpus_images == 16 and report.image_queries == 6 and report.caption_queries == 0
    with pytest.raises(NotFound):
        evaluate(settings, methods=["exact-numpy"], dataset="missing")


def test_limit_samples_at_most_that_many_queries_of_each_kind(settings):
    controlled_set(settings)
    report = evaluate(settings, methods=["exact-numpy"], limit=7, ks=(1, 3), recall_ks=(1,))
    assert report.caption_queries == 7 and report.image_queries == 7 and report.image_caption_queries == 7
    # Every caption's image is within its exact top 3 (even captions hit at 1, odd ones at 2).
    p1 = report.methods[0].metrics["caption_image.precision@1"]
    assert report.methods[0].metrics["caption_image.precision@3"] == 1.0 and round(p1 * 7) == p1 * 7


def test_cli_eval_writes_json_and_plot_and_warns_about_random_weights(
    settings, tmp_path, monkeypatch, capsys
):
    from vstore.cli import main

    controlled_set(settings, n=20)
    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VSTORE_HOME", str(tmp_path / "home"))
    out_json, out_png = tmp_path / "eval.json", tmp_path / "eval.png"
    code = main(
        [
            "eval",
            "--methods",
            "exact-numpy,faiss-hnsw",
            "--k",
            "1,3",
            "--recall-k",
            "1,10",
            "--out",
            str(out_json),
            "--plot",
            str(out_png),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err.count("has random weights") == 1
    assert "caption -> image (20 queries;" in captured.out and "exact-numpy" in captured.out
    assert "P@k: the share of queries whose true answer is among the first k" in captured.out
    data = json.loads(out_json.read_text())
    assert data["methods"]["exact-numpy"]["caption_image.precision@1"] == pytest.approx(0.5)
    assert set(data["methods"]) == {"exact-numpy", "faiss-hnsw(ef_search=100)"}
    assert data["random_weights"] is True
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_eval_json_prints_the_metrics_on_stdout_and_nothing_else(settings, tmp_path, monkeypatch, capsys):
    from vstore.cli import main

    controlled_set(settings, n=12)
    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VSTORE_HOME", str(tmp_path / "home"))
    args = ["eval", "-m", "exact-numpy", "-k", "1", "--recall-k", "1", "--template", "a {label}", "--json"]
    assert main(args) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)  # the whole of stdout is one JSON document
    # no labels here: the asked-for zero-shot is said to be skipped, and why, not silently left out
    assert data["zero_shot"] == {} and data["zero_shot_skipped"].startswith("no labelled images")
    assert "warning: --template given, but zero-shot was skipped: no labelled images" in captured.err
    assert (
        set(data["methods"]) == {"exact-numpy"}
        and "caption_image.precision@1" in data["methods"]["exact-numpy"]
    )
    assert "caption -> image" not in captured.out


def test_cli_eval_rejects_bad_k_with_exit_code_2(settings, monkeypatch, capsys):
    from vstore.cli import main

    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    assert main(["eval", "--k", "0,3"]) == 2
    assert "--k" in capsys.readouterr().err
