"""`vstore eval --mode text|vector|hybrid` (evaluation/modes.py): leave-one-caption-out recall worked out by
hand on a collection whose answers are known, and the CLI's table and JSON."""

from __future__ import annotations

import json

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from vstore.cli import main
from vstore.evaluation.modes import evaluate_modes

WORDS = ["zebra", "tiger", "walrus", "lemur", "otter", "heron"]
ADJECTIVES = ["sleepy", "hungry", "tiny", "curious", "wet", "grey"]
PLACES = ["savanna", "jungle", "iceberg", "forest", "river", "marsh"]


@pytest.fixture
def captioned(settings):
    rng = np.random.default_rng(0)
    with psycopg.connect(settings.database_url) as conn:
        register_vector(conn)
        dataset = conn.execute(
            "INSERT INTO datasets (name, root, format) VALUES ('d', '/x', 'folder') RETURNING id"
        ).fetchone()[0]
        for n, word in enumerate(WORDS):
            v = rng.normal(size=32).astype(np.float32)
            v /= np.linalg.norm(v)
            image = conn.execute(
                "INSERT INTO images (dataset_id, path, embedding) VALUES (%s, %s, %s) RETURNING id",
                (dataset, f"{n}.jpg", v),
            ).fetchone()[0]
            # each image's two captions share its animal and no other word with any caption (their vector
            # is the image's own: the vector side finds it first)
            for source, text in (("a", f"a {word} {ADJECTIVES[n]}"), ("b", f"{word} {PLACES[n]}")):
                conn.execute(
                    "INSERT INTO captions (image_id, source_id, text, embedding) VALUES (%s, %s, %s, %s)",
                    (image, source, text, v),
                )
    return settings


def test_every_mode_finds_the_captions_image_first_when_the_answer_is_unambiguous(captioned):
    report = evaluate_modes(captioned, ("text", "vector", "hybrid"), ks=(1, 5))
    by_mode = {r.mode: r for r in report.results}
    assert set(by_mode) == {"text", "vector", "hybrid"}
    for r in report.results:
        assert r.queries == 2 * len(WORDS) and r.recall == {1: 1.0, 5: 1.0}, r


def test_text_mode_leaves_the_query_caption_out(captioned):
    # an image whose only caption is the query cannot be found by its own words
    with psycopg.connect(captioned.database_url) as conn:
        conn.execute("DELETE FROM captions WHERE source_id = 'b' AND text LIKE 'zebra%'")
        conn.execute("UPDATE images SET status = 'ok'")
    report = evaluate_modes(captioned, ("text",), ks=(1, 10))
    # 11 captions; 'a zebra sleepy' has no other zebra caption: its image is not among the text hits
    assert report.results[0].queries == 11
    assert report.results[0].recall[1] == pytest.approx(10 / 11)


def test_cli_eval_mode_table_and_json(captioned, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("VSTORE_DATABASE_URL", captioned.database_url)
    monkeypatch.setenv("VSTORE_HOME", str(captioned.home))
    out = tmp_path / "modes.json"
    assert main(["eval", "--mode", "text", "--recall-k", "1,5,10", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "R@1" in table and "text" in table
    document = json.loads(out.read_text())
    assert document["protocol"] == "leave-one-caption-out" and document["modes"][0]["R@1"] == 1.0
    assert main(["eval", "--mode", "telepathy"]) == 2
