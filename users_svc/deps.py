"""The users API's typed dependencies: the settings, a session that owns its transaction, a read
session, the Celery producer, passwords, tokens and throttles, the access token's claims and the
current user. ``main.py``'s lifespan builds each from the settings given to ``create_app``; routers
declare these and stay thin."""

import uuid
from dataclasses import dataclass
from typing import Annotated

from celery import Celery
from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session, sessionmaker

from saga import (
    ROLE_OPERATOR,
    BearerCredentials,
    CeleryDep,
    Claims,
    ClientAddress,
    ReadSessionDep,
    ReadSessionFactoryDep,
    SessionDep,
    SessionFactoryDep,
    subject_if_required,
    unauthorized,
    verified_claims,
)

from . import engine, outbox
from .auth import TokenStore
from .config import Settings
from .hashing import Passwords
from .models import AccountStatus, RegistrationStatus, UserAccount
from .throttle import LoginLimiter, RequestThrottle

__all__ = [
    "INVALID_TOKEN",
    "AccessClaims",
    "CeleryDep",
    "ClientAddress",
    "CurrentOperator",
    "CurrentUser",
    "LoginLimiterDep",
    "OwnerSubject",
    "PasswordsDep",
    "Principal",
    "ReadSessionDep",
    "SagaRunner",
    "SagaRunnerDep",
    "SessionDep",
    "SettingsDep",
    "ThrottleDep",
    "TokenStoreDep",
    "can_log_in",
]

INVALID_TOKEN = "invalid or expired token"  # noqa: S105  # a message, not a secret


async def get_settings(request: Request) -> Settings:
    """The settings ``create_app`` was given."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


@dataclass(frozen=True)
class SagaRunner:
    """Publishes a committed saga (the relay covers a failure) and waits briefly for its end."""

    sessions: sessionmaker[Session]
    reads: sessionmaker[Session]
    celery: Celery
    wait_seconds: float

    def publish_and_wait(self, saga_id: uuid.UUID) -> str:
        outbox.publish_outbox(self.sessions, self.celery, saga_id=saga_id)
        return engine.wait_for_final(self.reads, saga_id, self.wait_seconds)


async def get_saga_runner(
    sessions: SessionFactoryDep, reads: ReadSessionFactoryDep, celery: CeleryDep, settings: SettingsDep
) -> SagaRunner:
    return SagaRunner(sessions, reads, celery, settings.register_wait_seconds)


SagaRunnerDep = Annotated[SagaRunner, Depends(get_saga_runner)]


async def get_passwords(request: Request) -> Passwords:
    passwords: Passwords = request.app.state.passwords
    return passwords


PasswordsDep = Annotated[Passwords, Depends(get_passwords)]


async def get_token_store(request: Request) -> TokenStore:
    tokens: TokenStore = request.app.state.tokens
    return tokens


TokenStoreDep = Annotated[TokenStore, Depends(get_token_store)]


async def get_login_limiter(request: Request) -> LoginLimiter:
    limiter: LoginLimiter = request.app.state.limiter
    return limiter


LoginLimiterDep = Annotated[LoginLimiter, Depends(get_login_limiter)]


async def get_throttle(request: Request) -> RequestThrottle:
    throttle: RequestThrottle = request.app.state.throttle
    return throttle


ThrottleDep = Annotated[RequestThrottle, Depends(get_throttle)]


def access_claims(request: Request, credentials: BearerCredentials) -> Claims:
    """A valid, unrevoked access token (401 otherwise)."""
    return verified_claims(request.app.state.token_verifier, credentials)


AccessClaims = Annotated[Claims, Depends(access_claims)]


async def owner_subject(request: Request, settings: SettingsDep) -> int | None:
    """The user id the access token speaks for when USERS_REQUIRE_ACCESS_TOKEN is on; None when off."""
    return await subject_if_required(request, request.app.state.token_verifier if settings.require_access_token else None)


OwnerSubject = Annotated[int | None, Depends(owner_subject)]


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
