"""Run the application with uvicorn. The socket is bound here first, so a port in use is a VstoreError
with the fix (uvicorn itself would log it and exit the process), and the model is loaded before the
server says it is ready."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

from vstore.config import Settings
from vstore.errors import ConfigError, VstoreError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


class PortInUse(VstoreError):
    """The address to serve on is taken or not ours to bind."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free port)."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a port number (0-65535).")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host!r} is not an address of this machine ({exc.strerror}).") from None
    family, _, _, _, address = infos[0]
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without
    # it every response on a kept-alive connection waited ~40 ms for a delayed ACK (Nagle). Measured with
    # benchmarks/serve_bench.py: text p50 83.8 -> 40.7 ms (docs/serve.md, runs 3 and 4).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise PortInUse(
            f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port, or stop what uses it."
        ) from None
    sock.set_inheritable(True)
    return sock


def serve(
    settings: Settings,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    ready: Callable[[str, object], None] | None = None,
    bound: Callable[[], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve until interrupted. `bound()` is called once the socket is bound (before the model loads, so a
    port in use is said first); `ready(url, app)` once the model is loaded."""
    sock = bind(host, port)
    try:
        if bound is not None:
            bound()
        import uvicorn

        from vstore.serve.app import create_app
        from vstore.serve.guards import LOOPBACK_HOSTS

        allowed = LOOPBACK_HOSTS if is_loopback(host) else None
        app = create_app(settings, allowed_hosts=allowed)
        bound_host, bound_port = sock.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        if ready is not None:
            ready(f"http://{shown}:{bound_port}/", app)
        config = uvicorn.Config(app, log_level=log_level, access_log=False, server_header=False)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
