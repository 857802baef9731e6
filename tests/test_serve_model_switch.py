"""A model switch reaches running processes (issue 20, hostile case 6: a `vstore serve` started before
`vstore reembed` kept the old model, encoded new texts with the old weights and wrote them into the text
cache the switch had just emptied, so later searches and `vstore.text()` read old-model vectors).

After a reembed a running server switches to the new model before its next encode; a process that still
holds the old model (a Store opened before the switch) cannot write a vector into the cache: rows name
their model, the database refuses a row of any model but the recorded one, and reads check it."""

from __future__ import annotations

import uuid

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient

from tests import imagegen
from tests.test_reembed import make_checkpoint
from vstore.config import Settings
from vstore.db.connect import connection, vector_array
from vstore.encode.encoder import OpenClipEncoder, resolve_spec
from vstore.errors import VstoreError
from vstore.ingest.pipeline import ingest
from vstore.search.store import Store
from vstore.serve.app import create_app
from vstore.train.reembed import reembed


@pytest.fixture
def shapes(settings, tmp_path, tiny_encoder) -> Settings:
    imagegen.make_captioned_shapes(tmp_path / "shapes", 6, seed=0)
    ingest(settings, tmp_path / "shapes", encoder=tiny_encoder)
    return settings


def cached(settings: Settings, text: str) -> np.ndarray | None:
    with connection(settings) as conn:
        row = conn.execute("SELECT embedding FROM text_queries WHERE text = %s", (text,)).fetchone()
    return None if row is None else vector_array(row[0])


def test_a_running_server_switches_to_the_new_model_before_its_next_encode(shapes, tmp_path, tiny_encoder):
    checkpoint = make_checkpoint(tmp_path / "new.pt", seed=7)
    new_spec = resolve_spec("vstore-tiny", str(checkpoint))
    new_encoder = OpenClipEncoder(new_spec, device="cpu")
    text = f"first searched after the switch {uuid.uuid4().hex[:6]}"
    with TestClient(create_app(shapes, encoder=tiny_encoder)) as client:
        assert client.get("/api/search", params={"q": "before the switch", "k": 2}).status_code == 200

        reembed(shapes, str(checkpoint))

        response = client.get("/api/search", params={"q": text, "k": 3})
        assert response.status_code == 200, response.text
        assert response.json()["model"] == new_spec.label
        assert client.get("/health").json()["model"] == new_spec.label
        upload = (tmp_path / "shapes").glob("*.png").__next__().read_bytes()
        assert client.post("/api/search/image", files={"file": ("q.png", upload)}).status_code == 200
    vector = cached(shapes, text)
    assert vector is not None
    assert np.allclose(vector, new_encoder.encode_texts([text])[0], atol=1e-5)  # the new model's vector
    assert not np.allclose(vector, tiny_encoder.encode_texts([text])[0], atol=1e-3)
    with connection(shapes) as conn:  # and SQL clients read that one
        from_sql = vector_array(conn.execute("SELECT vstore.text(%s)", (text,)).fetchone()[0])
    assert np.allclose(from_sql, vector)


def test_a_process_holding_the_old_model_writes_nothing_into_the_cache_after_a_switch(
    shapes, tmp_path, tiny_encoder
):
    checkpoint = make_checkpoint(tmp_path / "new.pt", seed=7)
    stale_text = f"encoded with the old weights {uuid.uuid4().hex[:6]}"
    with Store(shapes, encoder=tiny_encoder) as store:
        assert len(store.search_text("connected before the switch", k=2)) == 2
        reembed(shapes, str(checkpoint))
        with pytest.raises(VstoreError, match="reembed|switched|model"):
            store.search_text(stale_text, k=2)
    assert cached(shapes, stale_text) is None


def test_the_database_refuses_a_cache_row_of_another_model_and_reads_check_it(shapes, tiny_encoder):
    vector = tiny_encoder.encode_texts(["a row of another model"])[0]
    with psycopg.connect(shapes.database_url, autocommit=True) as conn:
        from pgvector.psycopg import register_vector

        register_vector(conn)
        current = conn.execute("SELECT model_key FROM embedding_model").fetchone()[0]
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(
                "INSERT INTO text_queries (text, embedding, model) VALUES (%s, %s, %s)",
                ("a row of another model", vector, "ViT-B-32/openai"),
            )
        with pytest.raises(psycopg.errors.NotNullViolation):  # a row must name its model
            conn.execute("INSERT INTO text_queries (text, embedding) VALUES ('unnamed', %s)", (vector,))
        conn.execute(
            "INSERT INTO text_queries (text, embedding, model) VALUES ('named', %s, %s)", (vector, current)
        )
        assert conn.execute("SELECT vstore.text('named') IS NOT NULL").fetchone() == (True,)
        # the record cannot move to another model while rows of this one remain (reembed empties them)
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("UPDATE embedding_model SET pretrained = 'other'")
