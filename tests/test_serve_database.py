"""`vstore serve` survives its database (issue 20, hostile case 5: after `vstore db stop` every route answered
500, and after `vstore db start` it stayed 500 until restarted). A lost connection is reopened; while the
database is down every route that needs it answers 503 JSON with Retry-After; it recovers by itself once
the database is back. Requests run on a small pool of connections, so one busy request does not hold up
the others, and a wait for a connection is bounded."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests import imagegen
from vstore.config import Settings
from vstore.ingest.pipeline import ingest
from vstore.serve.app import create_app

DB_ROUTES = ("/health", "/api/datasets", "/api/search?q=a+red+circle", "/api/images/1", "/images/1")


@pytest.fixture
def shapes(settings, tmp_path, tiny_encoder) -> Settings:
    imagegen.make_captioned_shapes(tmp_path / "shapes", 6, seed=0)
    ingest(settings, tmp_path / "shapes", encoder=tiny_encoder)
    return settings


def terminate_backends(settings: Settings) -> int:
    """Kill every other session on the test database, as a server restart or a DBA would."""
    with psycopg.connect(settings.database_url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


def test_connections_killed_under_the_server_are_reopened_on_the_next_request(shapes, tiny_encoder):
    with TestClient(create_app(shapes, encoder=tiny_encoder)) as client:
        assert client.get("/api/search", params={"q": "a red circle", "k": 2}).status_code == 200
        assert client.get("/health").status_code == 200
        assert terminate_backends(shapes) >= 1
        for route in DB_ROUTES:  # every route, not only the first after the kill, answers
            response = client.get(route)
            assert response.status_code in (200, 404), (route, response.status_code, response.text)


def test_a_wait_for_a_connection_is_bounded_and_answers_503_with_retry_after(shapes, tiny_encoder):
    app = create_app(shapes, encoder=tiny_encoder, connections=1, connection_wait_s=0.2)
    pool = app.state.backend.pool
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        with pool.lease():  # the only connection is busy, for longer than a request may wait
            response = client.get("/api/datasets")
            assert response.status_code == 503 and response.headers["retry-after"].isdigit()
            body = response.json()
            assert body["error"] == "ServerBusy" and "connection" in body["message"]
        assert client.get("/api/datasets").status_code == 200


def test_a_busy_connection_does_not_hold_up_a_request_on_another(shapes, tiny_encoder):
    app = create_app(shapes, encoder=tiny_encoder, connections=2, connection_wait_s=0.2)
    pool = app.state.backend.pool
    with TestClient(app) as client:
        with pool.lease():  # one request's worth of work in progress (a slow upload, say)
            assert client.get("/api/search", params={"q": "a red circle", "k": 2}).status_code == 200
            assert client.get("/health").status_code == 200


def test_requests_run_at_once_on_separate_connections(shapes, tiny_encoder):
    app = create_app(shapes, encoder=tiny_encoder, connections=3)
    pids: set[int] = set()
    barrier = threading.Barrier(3, timeout=30)
    pool = app.state.backend.pool

    def work() -> None:
        with pool.lease() as store:
            barrier.wait()  # all three hold a connection at the same moment
            pids.add(int(store.conn.info.backend_pid))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(pids) == 3
    app.state.backend.close()


# -- the real thing: a `vstore serve` process across `vstore db stop` / `vstore db start` ----------------


def _vstore(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vstore", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _env(home: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("VSTORE_")}
    return {**base, "VSTORE_HOME": str(home)}


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (names in lower case) and body."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


@pytest.mark.slow
def test_serve_answers_503_while_the_database_is_stopped_and_recovers_after_start(tmp_path):
    home = tmp_path / "home"
    shapes = tmp_path / "shapes"
    imagegen.make_captioned_shapes(shapes, 4, seed=0)
    init = _vstore(home, "init", "--model", "vstore-tiny", "--pretrained", "random")
    assert init.returncode == 0, init.stderr
    done = _vstore(home, "ingest", str(shapes))
    assert done.returncode == 0, done.stderr
    server = subprocess.Popen(
        [sys.executable, "-m", "vstore", "serve", "--port", "0"],
        env=_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        lines = []
        while url is None:
            line = server.stderr.readline()
            assert line, "".join(lines)
            lines.append(line)
            found = re.search(r"serving (http://127\.0\.0\.1:\d+)/", line)
            url = found.group(1) if found else None
        assert _get(url + "/health")[0] == 200

        stopped = _vstore(home, "db", "stop")
        assert stopped.returncode == 0, stopped.stderr
        for route in DB_ROUTES:
            status, headers, body = _get(url + route)
            assert status == 503, (route, status, body[:300])
            assert headers.get("retry-after", "").isdigit(), (route, headers)
            answer = json.loads(body)
            assert answer["error"] == "DatabaseUnavailable" and "vstore db start" in answer["message"]
        # serve did not start the database behind the back of whoever stopped it
        assert not (home / "pg" / "postmaster.pid").exists()

        started = _vstore(home, "db", "start")
        assert started.returncode == 0, started.stderr
        deadline = time.monotonic() + 60  # it recovers by itself: no restart, no request needed first
        while _get(url + "/health")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        for route in DB_ROUTES:
            assert _get(url + route)[0] in (200, 404), route
        status, _, body = _get(url + "/api/search?q=a+red+circle&k=2")
        assert status == 200 and len(json.loads(body)["hits"]) == 2
    finally:
        server.terminate()
        server.wait(timeout=30)
        _vstore(home, "db", "stop")
