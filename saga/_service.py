"""Conventions every service follows: health probes, JSON errors, request ids in the logs."""

import json
import logging
import unicodedata
import uuid
from collections.abc import Callable
from contextvars import ContextVar

import redis
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._metrics import add_metrics

log = logging.getLogger("service")


def _storable(value: str) -> str:
    # PostgreSQL refuses NUL in text, and a lone surrogate cannot be encoded: both would be 500s.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


Storable = AfterValidator(_storable)
"""Put last in the ``Annotated`` of every free-text input field, after its length limits."""

# Control characters (C0, DEL, C1 such as U+0085) and the line and paragraph separators: every
# character str.splitlines() breaks on is among them, and a mail header refuses each of those.
_NOT_IN_ONE_LINE = ("Cc", "Zl", "Zp")


def _single_line(value: str) -> str:
    for char in value:
        if unicodedata.category(char) in _NOT_IN_ONE_LINE:
            raise ValueError(f"must be one line of text: no line breaks or control characters (found U+{ord(char):04X})")
    return value


SingleLine = AfterValidator(_single_line)
"""For text that ends up in a mail header (a subject, a name): one line, no control characters."""


def database_ready(make_session: sessionmaker[Session]) -> bool:
    try:
        with make_session() as session:
            session.execute(text("SELECT 1"))
        return True
    except Exception:
        log.warning("database not reachable", exc_info=True)
        return False


def broker_ready(broker_url: str) -> bool:
    try:
        with redis.Redis.from_url(broker_url, socket_connect_timeout=1, socket_timeout=1) as client:
            return bool(client.ping())
    except redis.RedisError:
        log.warning("broker not reachable", exc_info=True)
        return False


def add_probes(app: FastAPI, checks: Callable[[Request], dict[str, bool]]) -> None:
    """``/healthz``: the process answers. ``/readyz``: its database and broker answer too."""

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "a dependency is down"}})
    def readyz(request: Request) -> JSONResponse:
        results = checks(request)
        ready = all(results.values())
        body = {"status": "ready" if ready else "unavailable", **{k: "ok" if v else "down" for k, v in results.items()}}
        return JSONResponse(body, status_code=200 if ready else 503)


class _AsciiJSONResponse(JSONResponse):
    """Escapes non-ASCII, so echoing invalid input (a lone surrogate) cannot fail to encode."""

    def render(self, content: object) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    return _AsciiJSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)


_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _documented_methods(request: Request) -> set[str]:
    """The methods the OpenAPI docs list for exactly this path (a template with no parameters)."""
    operations = request.app.openapi().get("paths", {})
    path = request.url.path.rstrip("/") or "/"
    documented = operations.get(path, {}) | operations.get(f"{path}/", {})
    return {method.upper() for method in documented if method in _HTTP_METHODS}


def add_conventions(app: FastAPI, broker_url: str) -> None:
    """What every service's app has: request ids in the logs, JSON errors, and the probes (the
    database of ``app.state.sessions`` and the broker), and request metrics at ``GET /metrics``."""
    add_metrics(app)  # before the request id, so its log lines carry the id
    app.add_middleware(RequestIdMiddleware)
    add_error_handlers(app)

    def checks(request: Request) -> dict[str, bool]:
        return {"database": database_ready(request.app.state.sessions), "broker": broker_ready(broker_url)}

    add_probes(app, checks)


def add_error_handlers(app: FastAPI) -> None:
    """No input may produce a traceback: unknown faults are logged and answered in JSON."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI answers 400 to a body that is not even text (invalid UTF-8): it is malformed JSON.
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            error = {"type": "json_invalid", "loc": ["body"], "msg": "the body is not valid UTF-8 JSON", "input": None}
            return _validation_error(RequestValidationError([error]))
        if exc.status_code == 405:
            # Starlette names only the first route whose path matches; a path served by several
            # routes (GET, PATCH and DELETE /v1/users/me) allows the methods of them all.
            headers = dict(exc.headers or {})
            allowed = {m.strip() for m in headers.get("Allow", "").split(",") if m.strip()} | _documented_methods(request)
            exc.headers = {**headers, "Allow": ", ".join(sorted(allowed))}
        return await http_exception_handler(request, exc)  # type: ignore[return-value]

    @app.exception_handler(OperationalError)
    async def database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database unavailable on %s %s: %s", request.method, request.url.path, exc.orig)
        return JSONResponse({"detail": "database unavailable, try again"}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(redis.RedisError)
    async def redis_unavailable(request: Request, exc: redis.RedisError) -> JSONResponse:
        log.error("redis unavailable on %s %s: %r", request.method, request.url.path, exc)
        return JSONResponse({"detail": "token store unavailable, try again"}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        log.exception("database error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)


_request_id: ContextVar[str] = ContextVar("request_id", default="-")


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every log record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s rid=%(request_id)s %(message)s"


def configure_logging() -> None:
    """Log lines carry the request id the gateway passed (or one made here)."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


class RequestIdMiddleware:
    """Takes X-Request-ID from the gateway (or makes one), logs with it and echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        value = Headers(scope=scope).get("x-request-id", "")[:128] or uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("X-Request-ID", value)
            await send(message)

        token = _request_id.set(value)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _request_id.reset(token)
