"""The users API's typed dependencies: the settings, a session that owns its transaction, a read
session, the access token's claims and the current user. Routers declare these and stay thin."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session

from saga import ROLE_OPERATOR, BearerCredentials, Claims, unauthorized, verified_claims

from .config import Settings
from .models import AccountStatus, RegistrationStatus, UserAccount

INVALID_TOKEN = "invalid or expired token"  # noqa: S105  # a message, not a secret


def get_settings(request: Request) -> Settings:
    """The settings ``create_app`` was given."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(request: Request) -> Iterator[Session]:
    """The request's transaction: committed when the endpoint returns, rolled back on error."""
    with request.app.state.sessions.begin() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_read_session(request: Request) -> Iterator[Session]:
    """A session for reading only (the read pool), closed when the endpoint returns."""
    with request.app.state.reads() as session:
        yield session


ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]


def access_claims(request: Request, credentials: BearerCredentials) -> Claims:
    """A valid, unrevoked access token (401 otherwise)."""
    return verified_claims(request.app.state.token_verifier, credentials)


AccessClaims = Annotated[Claims, Depends(access_claims)]


@dataclass(frozen=True)
class Principal:
    user: UserAccount  # loaded in a short session of its own, detached
    claims: Claims


def can_log_in(user: UserAccount) -> bool:
    return user.registration_status == RegistrationStatus.COMPLETED and user.account_status == AccountStatus.ACTIVE


def current_user(request: Request, claims: AccessClaims) -> Principal:
    """The active account the access token speaks for (401 if it cannot log in any more)."""
    with request.app.state.reads() as session:
        user = session.get(UserAccount, claims.sub)
    if user is None or not can_log_in(user):
        raise unauthorized(INVALID_TOKEN)
    return Principal(user, claims)


CurrentUser = Annotated[Principal, Depends(current_user)]


@dataclass(frozen=True)
class Operator:
    user_id: int
    email: str  # the actor of the operator's actions in a saga's history


def current_operator(request: Request, claims: AccessClaims) -> Operator:
    """An operator's access token (401 without a valid one, 403 without the operator role)."""
    if claims.role != ROLE_OPERATOR:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the operator role is required")
    with request.app.state.reads() as session:
        user = session.get(UserAccount, claims.sub)
    # Revoking the role ends the user's sessions; checked here too, so nothing depends on Redis alone.
    if user is None or not user.is_operator:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the operator role is required")
    return Operator(user.id, user.email)


CurrentOperator = Annotated[Operator, Depends(current_operator)]
