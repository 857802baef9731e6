"""The HTTP side of issue 22: mode=text|hybrid, rrf_k, filters, the cutoff, date order, the plan in the
answer, bad parameters as JSON 4xx, and /api/duplicates, against a real database and the tiny model."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.serve_fixtures import ingested_database
from vstore.serve.app import create_app


@pytest.fixture(scope="module")
def client(server_url, template_url, tiny_encoder, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-modes")
    with ingested_database(server_url, root, tiny_encoder) as settings:
        with TestClient(create_app(settings, encoder=tiny_encoder)) as client:
            yield client


def test_text_mode_finds_words_without_distances_and_says_so(client):
    body = client.get("/api/search", params={"q": "red", "mode": "text", "k": 5}).json()
    assert body["hits"] and all(h["distance"] is None and h["score"] > 0 for h in body["hits"])
    assert body["plan"].startswith("text") and body["query"]["mode"] == "text"
    assert "search" in body["took_ms"]


def test_hybrid_fuses_and_reports_the_vector_plan(client):
    body = client.get("/api/search", params={"q": "red", "mode": "hybrid", "rrf_k": 10, "k": 5}).json()
    assert len(body["hits"]) == 5 and body["plan"].startswith("hybrid (rrf_k 10)")
    scores = [h["score"] for h in body["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_filters_cutoff_and_order_over_http(client):
    everything = client.get("/api/search", params={"q": "a photo", "k": 30}).json()["hits"]
    cutoff = everything[3]["distance"]
    near = client.get("/api/search", params={"q": "a photo", "k": 30, "max_distance": cutoff}).json()
    assert 1 <= len(near["hits"]) <= 30 and all(h["distance"] <= cutoff for h in near["hits"])
    dated = client.get("/api/search", params={"q": "a photo", "k": 10, "order": "date"}).json()["hits"]
    taken = [h["taken_at"] for h in dated]
    assert taken == sorted(taken, reverse=True)
    wide = client.get("/api/search", params={"q": "a photo", "k": 30, "min_width": 500}).json()
    assert [h["path"] for h in wide["hits"]] == ["large.jpg"]
    assert "exact" in wide["plan"]
    future = client.get("/api/search", params={"q": "a photo", "taken_after": "2999-01-01"}).json()
    assert future["hits"] == []


@pytest.mark.parametrize(
    "params",
    [{"mode": "bogus"}, {"max_distance": "3"}, {"taken_after": "yesterday"}, {"rrf_k": "0"}, {"order": "x"}],
)
def test_bad_parameters_are_json_errors(client, params):
    response = client.get("/api/search", params={"q": "red", **params})
    assert response.status_code in (400, 422) and response.json()["message"]


def test_duplicates_route_lists_groups_with_a_keeper(client):
    body = client.get("/api/duplicates", params={"max_distance": 1.99}).json()
    assert body["groups"]
    group = body["groups"][0]
    assert group["keeper"] == group["members"][0]["id"]
    assert {"id", "path", "distance", "image_url"} <= set(group["members"][0])
    assert client.get("/api/duplicates", params={"max_distance": 5}).status_code in (400, 422)
