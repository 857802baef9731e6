"""What every request goes through: errors as JSON {"status", "error", "message"} with their status code
(never a traceback page), the Host check of a loopback server, upload length limits, and safe headers."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from vstore.errors import (
    ConfigError,
    DatabaseUnavailable,
    FileNotServed,
    ImageError,
    ModelMismatch,
    ModelSwitched,
    NotFound,
    SchemaNotReady,
    UploadTooLarge,
    VstoreError,
)
from vstore.serve.backend import SwitchingModel
from vstore.serve.pool import ServerBusy

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
STATUS = {
    ConfigError: 400,
    NotFound: 404,
    FileNotServed: 403,
    ModelMismatch: 409,
    UploadTooLarge: 413,
    ImageError: 422,
    DatabaseUnavailable: 503,
    SchemaNotReady: 503,
    ServerBusy: 503,
    SwitchingModel: 503,
    ModelSwitched: 503,
}
RETRY_AFTER_S = 2  # seconds; the pool tries to reconnect every second (serve/pool.py)
log = logging.getLogger("vstore.serve")


def _error(status: int, error: str, message: str, **extra: Any) -> JSONResponse:
    # A 503 is temporary (the database is down or restarting, every connection is busy): say when to
    # come back, so clients and proxies retry instead of failing.
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    body = {"status": status, "error": error, "message": message, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


def _status_of(exc: VstoreError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(VstoreError)
    async def vstore_error(_: Request, exc: VstoreError) -> JSONResponse:
        return _error(_status_of(exc), type(exc).__name__, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', 'invalid')}"
            for e in exc.errors()
        ]
        return _error(422, "InvalidRequest", "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "HTTPError", str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _error(500, "InternalError", f"{type(exc).__name__}; the server log has the details.")


def add_guards(app: FastAPI, upload_limit: int, allowed_hosts: tuple[str, ...] | None) -> None:
    allowed = {h.lower() for h in allowed_hosts} if allowed_hosts is not None else None

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        if allowed is not None:
            host = request.headers.get("host", "").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in allowed:
                return _error(400, "BadHost", f"this server answers to {', '.join(sorted(allowed))} only.")
        length = request.headers.get("content-length")
        if request.method == "POST" and length is None:
            # A chunked body would be spooled to disk whole before its size could be checked.
            return _error(411, "LengthRequired", "send the upload with a Content-Length header.")
        # Refuse an oversized upload before its body is read (multipart adds a few hundred bytes).
        if length is not None and length.isdigit() and int(length) > upload_limit + 65536:
            return _error(
                413, "UploadTooLarge", f"the request is over the {upload_limit:,}-byte upload limit."
            )
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response
