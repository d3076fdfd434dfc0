"""The profile API's typed dependencies: the settings, a session that owns its transaction, a read
session, and the user the access token speaks for (when tokens are required). ``main.py``'s
lifespan builds them from the settings given to ``create_app``; routers declare these and stay thin."""

from typing import Annotated

from fastapi import Depends, Request

from saga import ReadSessionDep, SessionDep, TokenSubject

from .config import Settings

__all__ = ["ReadSessionDep", "SessionDep", "SettingsDep", "TokenSubject"]


async def get_settings(request: Request) -> Settings:
    """The settings ``create_app`` was given."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]
