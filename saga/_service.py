"""Conventions every service follows: health probes, JSON errors, the insecure-default warning."""

import logging
from collections.abc import Callable

import redis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import sessionmaker

log = logging.getLogger("service")

# The placeholder docker-compose-prod.yml falls back to when POSTGRES_PASSWORD is not set, so
# that the contract's command runs out of the box; every process using it says so, loudly.
INSECURE_DEFAULT_PASSWORD = "changethis"  # noqa: S105  # the placeholder itself, not a secret


def warn_on_insecure_default(database_url: str) -> None:
    try:
        password = make_url(database_url).password
    except ArgumentError:
        return  # not a URL: the engine will say so
    if password == INSECURE_DEFAULT_PASSWORD:
        logging.getLogger("security").warning(
            "%s\nINSECURE DEFAULT: the database password is the placeholder %r. Set POSTGRES_PASSWORD "
            "(see .env.example) before this system holds real data.\n%s",
            "!" * 80,
            INSECURE_DEFAULT_PASSWORD,
            "!" * 80,
        )


def database_ready(make_session: sessionmaker) -> bool:
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


def add_error_handlers(app: FastAPI) -> None:
    """No input may produce a traceback: unknown faults are logged and answered in JSON."""

    @app.exception_handler(OperationalError)
    async def database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database unavailable on %s %s: %s", request.method, request.url.path, exc.orig)
        return JSONResponse({"detail": "database unavailable, try again"}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        log.exception("database error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)
