"""The users service: registration, accounts and tokens, and the state of every saga."""

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from argon2 import PasswordHasher
from fastapi import FastAPI, Request

from saga import (
    AccessTokenVerifier,
    RequestIdMiddleware,
    add_error_handlers,
    add_gateway_docs,
    add_metrics,
    add_probes,
    broker_ready,
    configure_logging,
    database_ready,
    token_security,
)

from . import accounts, api, sagas
from .auth import LoginLimiter, RequestThrottle, TokenStore
from .config import Settings, get_settings
from .db import make_sessionmaker, reads_of
from .hashing import MIB, HashSlots, hash_concurrency, read_resources
from .tasks import celery_app

log = logging.getLogger(__name__)


def hash_slots(settings: Settings) -> HashSlots:
    if settings.hash_concurrency is not None:
        size = settings.hash_concurrency
    else:
        resources = read_resources()
        size = hash_concurrency(
            resources,
            workers=settings.api_workers,
            hash_memory_bytes=settings.argon2_memory_cost_kib * 1024,
            process_memory_bytes=settings.process_memory_mib * MIB,
        )
        log.info(
            "hashes at once: %d per API process (%d MiB, %d cores, %d API workers, %d MiB a hash)",
            size,
            resources.memory_bytes // MIB,
            resources.cpus,
            settings.api_workers,
            settings.argon2_memory_cost_kib // 1024,
        )
    return HashSlots(size, settings.hash_wait_seconds)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.sessions = make_sessionmaker(settings.database_url)
        app.state.reads = reads_of(app.state.sessions)
        app.state.celery = celery_app
        app.state.hash_slots = hash_slots(settings)
        app.state.hasher = hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost_kib,
            parallelism=settings.argon2_parallelism,
        )
        # Verified against when an email is unknown, so that costs what a wrong password costs.
        app.state.dummy_hash = hasher.hash(secrets.token_urlsafe(16))
        token_state = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=2, socket_timeout=2)
        app.state.tokens = TokenStore(settings, token_state)
        app.state.limiter = LoginLimiter(settings, token_state)
        app.state.throttle = RequestThrottle(settings, token_state)
        app.state.token_verifier = AccessTokenVerifier(settings.jwt_signing_key, token_state)
        yield
        token_state.close()
        app.state.sessions.kw["bind"].dispose()

    app = FastAPI(title="users", version="1.0.0", lifespan=lifespan, redirect_slashes=False)
    # The specific /v1/users/me and /v1/users/restore first, before /v1/users/{user_id:int}.
    app.include_router(accounts.router)
    app.include_router(api.router)
    app.include_router(sagas.router)
    # The bearer scheme is in the OpenAPI docs of GET /v1/users/{id} only when tokens are required.
    app.include_router(api.user_router, dependencies=token_security(settings.require_access_token))
    add_metrics(app)  # before the request id, so its log lines carry the id
    app.add_middleware(RequestIdMiddleware)
    add_error_handlers(app)

    def checks(request: Request) -> dict[str, bool]:
        return {"database": database_ready(request.app.state.sessions), "broker": broker_ready(settings.broker_url)}

    add_probes(app, checks)
    add_gateway_docs(app)
    return app
