"""The profile service: profiles and subscriptions of registered users."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from fastapi import FastAPI, Request

from saga import (
    AccessTokenVerifier,
    RequestIdMiddleware,
    add_error_handlers,
    add_metrics,
    add_probes,
    broker_ready,
    configure_logging,
    database_ready,
    token_security,
)

from .api import router
from .config import Settings, get_settings
from .db import make_sessionmaker, reads_of


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.sessions = make_sessionmaker(settings.database_url)
        app.state.reads = reads_of(app.state.sessions)
        app.state.token_verifier = None
        token_state = None
        if settings.require_access_token:
            token_state = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=2, socket_timeout=2)
            app.state.token_verifier = AccessTokenVerifier(settings.jwt_signing_key, token_state)
        yield
        if token_state is not None:
            token_state.close()
        app.state.sessions.kw["bind"].dispose()

    app = FastAPI(title="profile", version="1.0.0", lifespan=lifespan, redirect_slashes=False)
    # The bearer scheme is in the OpenAPI docs only when tokens are required.
    app.include_router(router, dependencies=token_security(settings.require_access_token))
    add_metrics(app)  # before the request id, so its log lines carry the id
    app.add_middleware(RequestIdMiddleware)
    add_error_handlers(app)

    def checks(request: Request) -> dict[str, bool]:
        return {"database": database_ready(request.app.state.sessions), "broker": broker_ready(settings.broker_url)}

    add_probes(app, checks)
    return app
