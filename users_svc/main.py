"""The users service: registration, accounts and tokens, and the state of every saga."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from argon2 import PasswordHasher
from fastapi import FastAPI

from saga import (
    AccessTokenVerifier,
    add_conventions,
    add_gateway_docs,
    configure_logging,
    create_celery_app,
    session_pools,
    token_security,
)

from . import accounts, api, login, sagas
from .auth import TokenStore
from .config import Settings, get_settings
from .console import mount_console
from .hashing import MIB, HashSlots, Passwords, hash_concurrency, read_resources
from .throttle import LoginLimiter, RequestThrottle

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
    """The API, whose lifespan builds the pools, the Celery producer and the Redis clients from ``settings``
    (by default read from the environment now)."""
    settings = settings or get_settings()
    configure_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        # The producer the API publishes sagas with: the broker of these settings. (The worker's
        # own app, in tasks.py, reads the environment when its worker starts.)
        app.state.celery = create_celery_app("users", settings.broker_url)
        app.state.hash_slots = hash_slots(settings)
        hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost_kib,
            parallelism=settings.argon2_parallelism,
        )
        app.state.passwords = Passwords(hasher, app.state.hash_slots)
        token_state = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=2, socket_timeout=2)
        app.state.tokens = TokenStore(settings, token_state)
        app.state.limiter = LoginLimiter(settings, token_state)
        app.state.throttle = RequestThrottle(settings, token_state)
        app.state.token_verifier = AccessTokenVerifier(settings.jwt_signing_key, token_state)
        with session_pools(settings.database_url) as (app.state.sessions, app.state.reads):
            yield
        token_state.close()
        app.state.celery.close()

    app = FastAPI(title="users", version="1.0.0", lifespan=lifespan, redirect_slashes=False)
    # The specific /v1/users/me and /v1/users/restore first, before /v1/users/{user_id:int}.
    app.include_router(login.router)
    app.include_router(accounts.router)
    app.include_router(api.router)
    app.include_router(sagas.router)
    # The bearer scheme is in the OpenAPI docs of GET /v1/users/{id} only when tokens are required.
    app.include_router(api.user_router, dependencies=token_security(settings.require_access_token))
    add_conventions(app, settings.broker_url)
    mount_console(app)
    add_gateway_docs(app)
    return app
