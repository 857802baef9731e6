"""vstore eval on hand-made vectors inserted straight into the test database (no ingest pipeline):
known precision, NDCG 1.0 for exact methods, zero-shot with a deterministic encoder, the CLI end to end."""

from __future__ import annotations

import json
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
        assert got["image_image.precision@1"] == pytest.approx(1.0), name
    # IVF-PQ compresses the vectors (few rows: few bits), so it is only required to produce valid scores.
    assert all(0.0 <= v <= 1.0 for v in by_name["faiss-ivfpq"].values())


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


def test_ndcg_and_precision_are_one_for_exact_methods_on_external_queries(settings, tmp_path):
    insert(settings, unit_vectors(60, seed=2))
    queries = tmp_path / "queries.txt"
    queries.write_text(
        "# texts not in the dataset\na red bicycle\n\ntwo cats on a sofa\na harbour at night\n"
    )
    report = evaluate(
        settings,
        methods=["exact-numpy", "faiss-flat", "pgvector-exact", "sklearn-brute"],
        ks=(1, 5, 10),
        queries_file=queries,
        encoder=FakeEncoder(),
    )
    assert report.external_queries == 3
    for quality in report.methods:
        for k in (1, 5, 10):
            assert quality.metrics[f"external.ndcg@{k}"] == pytest.approx(1.0), quality.method
            assert quality.metrics[f"external.precision@{k}"] == pytest.approx(1.0), quality.method


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
    assert report.methods[0].metrics["external.ndcg@1"] == pytest.approx(1.0)


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


def test_limit_samples_the_same_queries_for_every_method(settings):
    controlled_set(settings)
    report = evaluate(settings, methods=["exact-numpy", "faiss-flat"], limit=7, ks=(1,), recall_ks=(1,))
    assert report.caption_queries == 7 and report.image_queries == 7
    first, second = report.methods
    assert first.metrics == second.metrics


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
            "--json",
            str(out_json),
            "--plot",
            str(out_png),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "random-weight" in captured.err
    assert "caption -> image (20 queries)" in captured.out and "exact-numpy" in captured.out
    data = json.loads(out_json.read_text())
    assert data["methods"]["exact-numpy"]["caption_image.precision@1"] == pytest.approx(0.5)
    assert set(data["methods"]) == {"exact-numpy", "faiss-hnsw(ef_search=40)"}
    assert data["random_weights"] is True
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_eval_rejects_bad_k_with_exit_code_2(settings, monkeypatch, capsys):
    from vstore.cli import main

    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    assert main(["eval", "--k", "0,3"]) == 2
    assert "--k" in capsys.readouterr().err
