"""The emails API's typed dependencies: the settings, sessions (one that owns its transaction, the
factory for an endpoint that commits before it publishes, a read session), the Celery producer, the
send throttle, the client's address and the user the access token speaks for (when tokens are
required). ``main.py``'s lifespan builds them from the settings given to ``create_app``; routers
declare these and stay thin."""

from typing import Annotated

from fastapi import Depends, Request

from saga import CeleryDep, ClientAddress, ReadSessionDep, SessionDep, SessionFactoryDep, TokenSubject

from .config import Settings
from .throttle import SendThrottle

__all__ = [
    "CeleryDep",
    "ClientAddress",
    "ReadSessionDep",
    "SendThrottleDep",
    "SessionDep",
    "SessionFactoryDep",
    "SettingsDep",
    "TokenSubject",
]


async def get_settings(request: Request) -> Settings:
    """The settings ``create_app`` was given."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_send_throttle(request: Request) -> SendThrottle:
    throttle: SendThrottle = request.app.state.send_throttle
    return throttle


SendThrottleDep = Annotated[SendThrottle, Depends(get_send_throttle)]
