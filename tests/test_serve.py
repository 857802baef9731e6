"""`vstore serve`'s HTTP API against a real embedded PostgreSQL and the tiny model: every route, filters,
paging, uploads giving the ingest vector, bad input as JSON 4xx, traversal attempts, a read-only role."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.serve_fixtures import huge_png, ingested_database
from vstore.config import Settings
from vstore.db.connect import connection
from vstore.search.store import MAX_K
from vstore.serve.app import create_app

HIT_FIELDS = {"id", "kind", "image_id", "dataset", "split", "path", "caption", "distance", "similarity"}


@pytest.fixture(scope="module")
def served(server_url, template_url, tiny_encoder, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    with ingested_database(server_url, root, tiny_encoder) as settings:
        yield settings, root


@pytest.fixture(scope="module")
def client(served, tiny_encoder):
    settings, _ = served
    with TestClient(create_app(settings, encoder=tiny_encoder)) as client:
        yield client


def image_id(settings: Settings, path: str) -> int:
    with connection(settings) as conn:
        return int(conn.execute("SELECT id FROM images WHERE path = %s", (path,)).fetchone()[0])


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status and body["message"] and "Traceback" not in response.text
    return body


# -- the routes --------------------------------------------------------------------------------------


def test_health_names_the_model_counts_and_random_weights(client):
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["model"] == "vstore-tiny/random" and body["dim"] == 32
    assert body["random_weights"] is True
    assert body["counts"]["images_ok"] == 12 + 6 + 11
    assert body["counts"]["captions"] > 0


def test_datasets_lists_searchable_images_per_split(client):
    listed = {d["name"]: d for d in client.get("/api/datasets").json()["datasets"]}
    assert listed["coco"]["splits"] == {"train2017": 6, "val2017": 12}
    assert listed["coco"]["images"] == 18
    assert listed["odd"]["images"] == 11 and listed["odd"]["splits"] == {}


def test_text_search_returns_k_image_hits_nearest_first_with_timings(client):
    response = client.get("/api/search", params={"q": "a red circle", "k": 7})
    assert response.status_code == 200
    body = response.json()
    hits = body["hits"]
    assert len(hits) == 7
    assert all(HIT_FIELDS <= set(h) and h["kind"] == "image" and h["caption"] is None for h in hits)
    distances = [h["distance"] for h in hits]
    assert distances == sorted(distances)
    assert all(abs(h["similarity"] - (1 - h["distance"])) < 1e-5 for h in hits)
    assert all(not h["path"].startswith("/") for h in hits)  # relative to the dataset root
    assert set(body["took_ms"]) == {"encode", "search", "serialise", "total"}
    assert body["took_ms"]["total"] >= body["took_ms"]["search"]
    assert "search;dur=" in response.headers["server-timing"]
    assert body["random_weights"] is True and body["next_offset"] == 7


def test_text_search_for_captions_returns_caption_text(client):
    params = {"q": "a blue square", "target": "captions", "k": 5}
    hits = client.get("/api/search", params=params).json()["hits"]
    assert len(hits) == 5
    assert all(h["kind"] == "caption" and h["caption"] for h in hits)
    assert all(h["dataset"] == "coco" for h in hits)  # only coco has captions


def test_dataset_and_split_filters(client):
    def paths(**params):
        return [(h["dataset"], h["split"]) for h in client.get("/api/search", params=params).json()["hits"]]

    assert set(paths(q="shape", k=50, dataset="odd")) == {("odd", None)}
    assert set(paths(q="shape", k=50, dataset="coco", split="train2017")) == {("coco", "train2017")}
    assert len(paths(q="shape", k=50, dataset="coco", split="train2017")) == 6
    assert len(paths(q="shape", k=50, dataset="coco", split="val2017", exact="true")) == 12


def test_pages_join_up_to_the_same_hits_as_one_big_page(client):
    params = {"q": "a green triangle", "exact": "true"}
    whole = client.get("/api/search", params={**params, "k": 12}).json()["hits"]
    first = client.get("/api/search", params={**params, "k": 6}).json()
    second = client.get("/api/search", params={**params, "k": 6, "offset": 6}).json()
    assert [h["id"] for h in first["hits"] + second["hits"]] == [h["id"] for h in whole]
    assert first["next_offset"] == 6 and second["offset"] == 6


def test_last_page_says_there_is_no_more(client):
    body = client.get("/api/search", params={"q": "x", "dataset": "odd", "k": 10, "offset": 10}).json()
    assert len(body["hits"]) == 1 and body["next_offset"] is None


def test_similar_leaves_the_image_out_and_captions_are_image_to_text(client, served):
    settings, _ = served
    query = image_id(settings, "val2017/000000000103.jpg")
    similar = client.get(f"/api/images/{query}/similar", params={"k": 5}).json()["hits"]
    assert len(similar) == 5 and query not in [h["id"] for h in similar]
    assert all(h["kind"] == "image" for h in similar)
    captions = client.get(f"/api/images/{query}/captions", params={"k": 4}).json()
    assert len(captions["hits"]) == 4 and all(h["kind"] == "caption" for h in captions["hits"])
    assert captions["took_ms"]["encode"] == 0.0  # the stored vector: no model call


def test_image_record_has_its_own_captions(client, served):
    settings, _ = served
    query = image_id(settings, "val2017/000000000104.jpg")  # image 4 of make_coco: 5 captions
    record = client.get(f"/api/images/{query}").json()
    assert record["dataset"] == "coco" and record["split"] == "val2017"
    assert record["path"] == "val2017/000000000104.jpg" and len(record["captions"]) == 5


def test_image_file_and_cached_thumbnail(client, served):
    settings, root = served
    query = image_id(settings, "large.jpg")
    original = client.get(f"/images/{query}")
    assert original.status_code == 200 and original.headers["content-type"] == "image/jpeg"
    assert original.content == (root / "odd" / "large.jpg").read_bytes()
    thumb = client.get(f"/images/{query}", params={"size": 100})
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size == (128, 96)  # rounded up to 128, aspect kept
    cached = list((settings.home / "thumbnails").rglob("*.jpg"))
    assert len(cached) == 1 and cached[0].read_bytes() == thumb.content
    assert client.get(f"/images/{query}", params={"size": 100}).content == thumb.content


def test_thumbnail_of_an_exif_rotated_image_is_upright(client, served):
    settings, _ = served
    thumb = client.get(f"/images/{image_id(settings, 'rotated.jpg')}", params={"size": 64})
    assert Image.open(io.BytesIO(thumb.content)).size == (30, 40)  # 40x30 stored, orientation 6


def test_the_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/openapi.json").json()["paths"].keys() >= {
        "/health",
        "/api/search",
        "/api/search/image",
        "/api/images/{image_id}/similar",
        "/api/images/{image_id}/captions",
        "/images/{image_id}",
    }


# -- uploads ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["large.jpg", "palette.png", "rotated.jpg", "deep.png"])
def test_an_upload_gives_the_vector_of_the_ingested_file(client, served, name):
    settings, root = served
    data = (root / "odd" / name).read_bytes()
    response = client.post("/api/search/image", params={"k": 3}, files={"file": (name, data)})
    assert response.status_code == 200, response.text
    top = response.json()["hits"][0]
    assert top["path"] == name and top["distance"] < 1e-5


def test_upload_can_search_captions(client, served):
    _, root = served
    data = (root / "coco" / "val2017" / "000000000100.jpg").read_bytes()
    params = {"k": 3, "target": "captions"}
    hits = client.post("/api/search/image", params=params, files={"file": ("a.jpg", data)}).json()["hits"]
    assert len(hits) == 3 and all(h["kind"] == "caption" for h in hits)


def test_non_image_upload_is_422(client):
    response = client.post("/api/search/image", files={"file": ("notes.png", b"this is not a picture")})
    assert "not an image" in assert_error(response, 422)["message"]


def test_empty_upload_and_missing_file_are_4xx(client):
    assert_error(client.post("/api/search/image", files={"file": ("e.png", b"")}), 422)
    assert_error(client.post("/api/search/image"), 422)


def test_a_20000x20000_png_is_refused_without_decoding(client):
    response = client.post("/api/search/image", files={"file": ("huge.png", huge_png(20000, 20000))})
    assert_error(response, 422)


def test_oversized_upload_is_413_by_header_and_by_body(served, tiny_encoder, client):
    settings, root = served
    too_big = b"\xff" * (16 * 2**20 + 70_000)
    assert_error(client.post("/api/search/image", files={"file": ("big.jpg", too_big)}), 413)
    small_limit = create_app(settings, encoder=tiny_encoder, upload_limit=1000)
    with TestClient(small_limit) as limited:
        data = (root / "odd" / "large.jpg").read_bytes()
        assert len(data) > 1000
        body = assert_error(limited.post("/api/search/image", files={"file": ("l.jpg", data)}), 413)
        assert "1,000-byte limit" in body["message"]


def test_an_upload_without_a_length_is_411(client):
    def chunks():
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        yield b"x" * 1000 + b"\r\n--b--\r\n"

    headers = {"content-type": "multipart/form-data; boundary=b"}
    assert_error(client.post("/api/search/image", content=chunks(), headers=headers), 411)


# -- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"q": "x", "k": 0},
        {"q": "x", "k": MAX_K + 1},
        {"q": "x", "k": 10**30},
        {"q": "x", "k": "ten"},
        {"q": "x", "offset": -1},
        {"q": "x", "target": "videos"},
        {"q": "x", "ef_search": 0},
        {"q": ""},
        {"q": "x" * 5000},
        {},
    ],
)
def test_bad_search_parameters_are_422_json(client, params):
    assert_error(client.get("/api/search", params=params), 422)


def test_offset_plus_k_beyond_the_limit_is_400(client):
    body = assert_error(client.get("/api/search", params={"q": "x", "k": 500, "offset": 600}), 400)
    assert str(MAX_K) in body["message"]


def test_whitespace_and_nul_queries_are_400(client):
    assert_error(client.get("/api/search", params={"q": "   "}), 400)
    assert_error(client.get("/api/search", params={"q": "a\x00b"}), 400)


def test_unknown_dataset_and_unknown_ids_are_404(client):
    assert_error(client.get("/api/search", params={"q": "x", "dataset": "nope"}), 404)
    for route in ("/api/images/999999", "/api/images/999999/similar", "/api/images/999999/captions"):
        assert_error(client.get(route), 404)
    assert_error(client.get("/images/999999"), 404)
    assert_error(client.get("/no/such/route"), 404)


@pytest.mark.parametrize("bad", ["0", "-3", "abc", str(2**64), "1.5"])
def test_ids_that_are_not_ids_are_422(client, bad):
    assert_error(client.get(f"/images/{bad}"), 422)
    assert_error(client.get(f"/api/images/{bad}/similar"), 422)


def test_thumbnail_sizes_out_of_range_are_422(client, served):
    query = image_id(served[0], "large.jpg")
    assert_error(client.get(f"/images/{query}", params={"size": 0}), 422)
    assert_error(client.get(f"/images/{query}", params={"size": 100_000}), 422)


# -- files: only by id, only from a dataset's root -----------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/images/..%2F..%2F..%2Fetc%2Fpasswd",
        "/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/images/1%2F..%2F..%2Fetc%2Fpasswd",
        "/images/1/../../etc/passwd",
        "/images/..%5c..%5cwindows",
        "/static/../../../../etc/passwd",
        "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/static/%2e%2e/app.py",
        "/static/..%2Fapp.py",
        "//etc/passwd",
    ],
)
def test_traversal_attempts_never_reach_a_file(client, path):
    response = client.get(path)
    assert response.status_code in (400, 403, 404, 422), (path, response.status_code)
    assert "root:" not in response.text and "import " not in response.text


def test_stored_paths_that_leave_the_dataset_root_are_not_served(client, served):
    settings, root = served
    secret = root / "secret.jpg"
    secret.write_bytes((root / "odd" / "large.jpg").read_bytes())
    with connection(settings) as conn:
        dataset = conn.execute(
            "INSERT INTO datasets (name, root, format) VALUES ('evil', %s, 'manifest') RETURNING id",
            (str(root / "evilroot"),),
        ).fetchone()[0]
        ids = [
            conn.execute(
                "INSERT INTO images (dataset_id, path, status) VALUES (%s, %s, 'failed') RETURNING id",
                (dataset, stored),
            ).fetchone()[0]
            for stored in ("../secret.jpg", str(secret), "sub/../../secret.jpg")
        ]
        conn.commit()
    try:
        for id_ in ids:
            assert_error(client.get(f"/images/{id_}"), 403)
            assert_error(client.get(f"/images/{id_}", params={"size": 64}), 403)
    finally:
        with connection(settings) as conn:
            conn.execute("DELETE FROM datasets WHERE id = %s", (dataset,))
            conn.commit()


def test_a_missing_file_is_404(client, served, tmp_path):
    settings, root = served
    query = image_id(settings, "plain.bmp")
    moved = tmp_path / "plain.bmp"
    (root / "odd" / "plain.bmp").rename(moved)
    try:
        assert "gone" in assert_error(client.get(f"/images/{query}"), 404)["message"]
    finally:
        moved.rename(root / "odd" / "plain.bmp")


def test_a_foreign_host_header_is_refused_when_bound_to_loopback(served, tiny_encoder):
    app = create_app(served[0], encoder=tiny_encoder, allowed_hosts=("127.0.0.1", "localhost"))
    with TestClient(app, base_url="http://127.0.0.1:8765") as local:
        assert local.get("/health").status_code == 200
        assert_error(local.get("/health", headers={"host": "evil.example:8765"}), 400)


# -- a role that may only read (plus the text cache) -------------------------------------------------------


def test_every_route_works_for_a_role_that_can_only_read_and_cache_texts(served, tiny_encoder, tmp_path):
    settings, root = served
    role = f"reader_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    with psycopg.connect(settings.database_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")  # the embedded server needs one
        admin.execute(f"GRANT USAGE ON SCHEMA public, vstore TO {role}")
        admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        admin.execute(f"GRANT INSERT, UPDATE ON public.text_queries TO {role}")
        admin.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    url = psycopg.conninfo.make_conninfo(settings.database_url, user=role, password=password)
    reader = Settings(database_url=url, home=tmp_path)
    try:
        with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM images")  # the role really cannot write
        query = image_id(settings, "large.jpg")
        data = (root / "odd" / "large.jpg").read_bytes()
        with TestClient(create_app(reader, encoder=tiny_encoder)) as client:
            assert client.get("/health").status_code == 200
            assert client.get("/api/datasets").status_code == 200
            new_text = f"a text nobody searched {uuid.uuid4().hex}"
            assert len(client.get("/api/search", params={"q": new_text, "k": 3}).json()["hits"]) == 3
            assert client.get("/api/search", params={"q": new_text, "target": "captions"}).status_code == 200
            assert client.post("/api/search/image", files={"file": ("l.jpg", data)}).status_code == 200
            for route in ("", "/similar", "/captions"):
                assert client.get(f"/api/images/{query}{route}").status_code == 200
            assert client.get(f"/images/{query}").status_code == 200
            assert client.get(f"/images/{query}", params={"size": 64}).status_code == 200
    finally:
        with psycopg.connect(settings.database_url, autocommit=True) as admin:
            admin.execute(f"REASSIGN OWNED BY {role} TO CURRENT_USER")
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")


def test_searched_texts_land_in_the_text_cache_for_sql_clients(client, served):
    settings, _ = served
    text = f"cached for sql {uuid.uuid4().hex}"
    client.get("/api/search", params={"q": text})
    with connection(settings) as conn:
        assert conn.execute("SELECT count(*) FROM text_queries WHERE text = %s", (text,)).fetchone()[0] == 1


def test_static_files_ship_in_the_package():
    static = Path(__import__("vstore.serve.app", fromlist=["STATIC"]).STATIC)
    assert {p.name for p in static.iterdir()} >= {"index.html", "app.js", "style.css"}


def test_under_the_vstore_db_reader_role_a_new_text_is_searched_without_caching(
    served, tiny_encoder, tmp_path
):
    from vstore.db.roles import ensure_reader

    settings, _ = served
    reader = Settings(database_url=ensure_reader(settings).url, home=tmp_path)
    new_text = f"never searched before {uuid.uuid4().hex}"
    with TestClient(create_app(reader, encoder=tiny_encoder)) as client:
        body = client.get("/api/search", params={"q": new_text, "k": 3}).json()
        assert len(body["hits"]) == 3 and body["text_cache_skipped"] is True
    with psycopg.connect(settings.database_url) as conn:  # nothing was written
        assert conn.execute("SELECT count(*) FROM text_queries WHERE text = %s", (new_text,)).fetchone() == (
            0,
        )
    with TestClient(create_app(settings, encoder=tiny_encoder)) as owner:  # the owner caches it
        assert owner.get("/api/search", params={"q": new_text, "k": 3}).json()["text_cache_skipped"] is False
