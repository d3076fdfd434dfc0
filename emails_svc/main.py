"""The emails service: addresses learnt from the saga, and mail delivery."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from saga import access_token_verifier, add_conventions, configure_logging, create_celery_app, session_pools, token_security

from .api import router
from .config import Settings, get_settings
from .throttle import SendThrottle


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API, whose lifespan builds its pools, Celery producer, throttle and token verifier from
    ``settings`` (by default read from the environment now)."""
    settings = settings or get_settings()
    configure_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        # The producer the API publishes deliveries with: the broker of these settings.
        app.state.celery = create_celery_app("emails", settings.broker_url)
        app.state.send_throttle = SendThrottle(settings.broker_url, settings.send_rate_per_address, settings.send_rate_per_recipient)
        with (
            session_pools(settings.database_url) as (app.state.sessions, app.state.reads),
            access_token_verifier(settings.require_access_token, settings.jwt_signing_key, settings.broker_url) as app.state.token_verifier,
        ):
            yield
        app.state.send_throttle.close()
        app.state.celery.close()

    app = FastAPI(title="emails", version="1.0.0", lifespan=lifespan, redirect_slashes=False)
    # The bearer scheme is in the OpenAPI docs only when tokens are required.
    app.include_router(router, dependencies=token_security(settings.require_access_token))
    add_conventions(app, settings.broker_url)
    return app
