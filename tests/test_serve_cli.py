"""`vstore serve` as a user runs it: a real process that prints its address, answers, and says clearly when
it cannot listen."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from vstore.serve.server import is_loopback


def _env(settings) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("VSTORE_")}
    return {**base, "VSTORE_DATABASE_URL": settings.database_url, "VSTORE_HOME": str(settings.home)}


@pytest.mark.slow
def test_serve_prints_its_address_and_answers_until_stopped(settings):
    process = subprocess.Popen(
        [sys.executable, "-m", "vstore", "serve", "--port", "0"],
        env=_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 120
        lines = []
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"serving (http://127\.0\.0\.1:\d+/)", line)
            url = found.group(1) if found else None
        assert url, "".join(lines)
        assert any("RANDOM WEIGHTS" in line for line in lines)
        with urllib.request.urlopen(url + "health", timeout=30) as response:
            health = json.load(response)
        assert health["model"] == "vstore-tiny/random" and health["counts"]["images"] == 0
        with urllib.request.urlopen(url, timeout=30) as response:
            assert b"<title>vstore</title>" in response.read()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.stdout.read() == ""  # nothing on stdout: messages go to stderr


@pytest.mark.slow
def test_a_port_in_use_is_one_line_with_the_fix(settings):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "vstore", "serve", "--port", str(port)],
            env=_env(settings),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert f"Error: cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert "Traceback" not in done.stderr and "loading the model" not in done.stderr  # said before loading


@pytest.mark.slow
def test_a_port_out_of_range_is_a_bad_option(settings):
    done = subprocess.run(
        [sys.executable, "-m", "vstore", "serve", "--port", "70000"],
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_loopback_names():
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.10", "example.com", "::"))


def test_connections_to_the_served_socket_send_without_nagle_delay():
    """asyncio turns on TCP_NODELAY only for sockets whose proto is TCP; without it, each response on a
    kept-alive connection waited ~40 ms for the client's delayed ACK (docs/serve.md, benchmark)."""
    import asyncio
    import socket

    from vstore.serve.server import bind

    async def accepted_nodelay() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        listener = bind("127.0.0.1", 0)
        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        try:
            return await asyncio.wait_for(seen, 10)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(accepted_nodelay()) == 1
