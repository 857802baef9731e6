"""Every value vstore forwards to PostgreSQL is range-checked against the server's own limits, in one place
(vstore/db/knobs.py): out of range is one line and exit 2 in the CLI, 422 over HTTP, never a traceback or a
500 (issue 20, hostile case 8: `--probes 50000` printed a traceback; probes 32,769-100,000 gave 500)."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests import imagegen
from vstore.db import knobs
from vstore.db.connect import connection
from vstore.ingest.pipeline import ingest
from vstore.serve.app import create_app


def test_the_limits_are_the_servers_own(settings):
    """pg_settings holds pgvector's ranges for its settings; a pgvector that changes them fails here."""
    with connection(settings) as conn:
        conn.execute("SELECT '[1]'::vector")  # loads pgvector's library, which defines its settings
        ranges = {
            name: (int(low), int(high))
            for name, low, high in conn.execute(
                "SELECT name, min_val, max_val FROM pg_settings WHERE name = ANY(%s)",
                ([limit.setting for limit in knobs.SETTINGS],),
            ).fetchall()
        }
    assert ranges == {limit.setting: (limit.low, limit.high) for limit in knobs.SETTINGS}


@pytest.mark.parametrize("limit", knobs.INDEX_OPTIONS, ids=lambda limit: limit.setting)
def test_index_options_are_refused_by_the_server_just_past_the_limits(settings, limit):
    kind = "ivfflat" if limit.setting == "lists" else "hnsw"
    other = {"m": "ef_construction = 1000", "ef_construction": "m = 2", "lists": None}[limit.setting]
    with connection(settings) as conn:
        conn.execute("CREATE TEMP TABLE t (e vector(3))")
        edges = ((limit.low, True), (limit.high, True), (limit.low - 1, False), (limit.high + 1, False))
        for value, accepted in edges:
            options = f"{limit.setting} = {value}" + (f", {other}" if other else "")
            statement = f"CREATE INDEX ON t USING {kind} (e vector_cosine_ops) WITH ({options})"
            with conn.transaction(force_rollback=True):
                if accepted:
                    conn.execute(statement)
                else:
                    with pytest.raises(psycopg.errors.InvalidParameterValue):
                        conn.execute(statement)


@pytest.mark.parametrize("value", [0, 32769, 50000, 2**40])
def test_probes_out_of_range_is_a_config_error_before_any_sql(value):
    with pytest.raises(knobs.ConfigError, match=r"--probes must be between 1 and 32768 .*ivfflat.probes"):
        knobs.PROBES.check(value)
    assert knobs.PROBES.check(32768) == 32768


@pytest.fixture
def shapes(settings, tmp_path, tiny_encoder):
    imagegen.make_captioned_shapes(tmp_path / "shapes", 6, seed=0)
    ingest(settings, tmp_path / "shapes", encoder=tiny_encoder)
    return settings


def test_cli_search_with_probes_50000_is_one_line_and_exit_2(shapes, tmp_path, monkeypatch, capsys):
    from vstore.cli import main

    monkeypatch.setenv("VSTORE_DATABASE_URL", shapes.database_url)
    monkeypatch.setenv("VSTORE_HOME", str(tmp_path / "home"))
    assert main(["search", "a red circle", "--probes", "50000"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert "Traceback" not in err and len(errors) == 1, err
    assert "--probes must be between 1 and 32768" in errors[0] and "50000" in errors[0]
    assert main(["search", "a red circle", "--probes", "32768", "-k", "2", "--json"]) == 0


@pytest.mark.parametrize(
    "args",
    [
        ["--type", "ivfflat", "--lists", "40000"],
        ["--type", "hnsw", "--m", "101"],
        ["--type", "hnsw", "--ef-construction", "1001"],
    ],
)
def test_cli_index_options_past_the_servers_limits_are_one_line_and_exit_2(
    settings, tmp_path, monkeypatch, capsys, args
):
    from vstore.cli import main

    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VSTORE_HOME", str(tmp_path / "home"))
    assert main(["index", "create", *args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err  # checked before "building"
    assert err.startswith("Error:") and "PostgreSQL" in err


def test_http_probes_and_ef_search_past_the_limits_are_422_and_the_limits_themselves_answer(
    shapes, tiny_encoder
):
    with TestClient(create_app(shapes, encoder=tiny_encoder)) as client:
        for params in ({"probes": 50000}, {"probes": 32769}, {"probes": 0}, {"ef_search": 1001}):
            response = client.get("/api/search", params={"q": "a red circle", **params})
            assert response.status_code == 422, (params, response.text)
            assert response.json()["error"] == "InvalidRequest"
        for params in ({"probes": 32768}, {"ef_search": 1000}):
            response = client.get("/api/search", params={"q": "a red circle", **params})
            assert response.status_code == 200, (params, response.text)
