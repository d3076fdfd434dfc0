import logging
import uuid
from typing import Annotated

import redis
from fastapi import APIRouter, HTTPException, Path, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from saga import ReadEngineDep, ReadSessionFactoryDep, SagaKind, SessionFactoryDep, ensure_owner

from . import engine, queries
from .deps import ClientAddress, OwnerSubject, PasswordsDep, ReadSessionDep, SagaRunnerDep, ThrottleDep
from .models import RegistrationSaga, Saga, SagaStatus, SagaStep, UserAccount
from .schemas import ErrorOut, RegisterRequest, Responses, SagaOut, SagaRef, UserOut, registration_saga_url
from .throttle import RequestThrottle

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1")
# GET /v1/users/{id}: main.py adds the bearer scheme to it when USERS_REQUIRE_ACCESS_TOKEN is on.
user_router = APIRouter(prefix="/v1")
NOT_FOUND: Responses = {404: {"model": ErrorOut}}
TOO_MANY: Responses = {429: {"model": ErrorOut, "description": "too many requests from this address; see Retry-After"}}
BUSY: Responses = {503: {"model": ErrorOut, "description": "too many passwords being hashed at once, or a store down; see Retry-After"}}
OWNER_ONLY: Responses = {
    401: {"model": ErrorOut, "description": "no valid access token (when tokens are required)"},
    403: {"model": ErrorOut, "description": "the token is another user's (when tokens are required)"},
}
UserId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def throttle(limits: RequestThrottle, action: str, address: str, *, fail_open: bool = False) -> None:
    """429 with Retry-After once the client address made too many ``action`` requests.

    ``fail_open``: with Redis down, let the request through (a registration is accepted into the
    outbox while Redis is down; the hash slots still bound what it costs).
    """
    try:
        retry_after = limits.hit(action, address)
    except redis.RedisError as exc:
        if not fail_open:
            raise
        log.warning("throttle unavailable, %s let through: %r", action, exc)
        return
    if retry_after is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, "too many requests, try again later", headers={"Retry-After": str(retry_after)}
        )


def saga_url(saga: Saga) -> str:
    return registration_saga_url(saga.id) if isinstance(saga, RegistrationSaga) else f"/v1/sagas/{saga.id}"


def saga_ref(saga: Saga) -> SagaRef:
    return SagaRef(id=saga.id, status=saga.status, url=saga_url(saga))


@router.post(
    "/register/",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses={
        202: {"model": UserOut, "description": "accepted; the saga is still running or failed"},
        409: {"model": ErrorOut},
        **TOO_MANY,
        **BUSY,
    },
)
@router.post("/register", include_in_schema=False)
def register(
    body: RegisterRequest,
    response: Response,
    sessions: SessionFactoryDep,
    reads: ReadSessionFactoryDep,
    runner: SagaRunnerDep,
    passwords: PasswordsDep,
    limits: ThrottleDep,
    address: ClientAddress,
) -> UserOut:
    """Record the user and start the registration saga; wait briefly for it to finish.

    201 when the saga completed within the wait, 202 (with the saga's URL) otherwise. Limited per
    client address (429 with Retry-After).
    """
    throttle(limits, "register", address, fail_open=True)
    password_hash = passwords.hash(body.password)
    try:
        with sessions.begin() as session:
            user = UserAccount(
                email=body.email,
                first_name=body.first_name,
                last_name=body.last_name,
                active=body.active,
                password_hash=password_hash,
            )
            session.add(user)
            session.flush()
            saga = engine.start_saga(session, user, SagaKind.REGISTRATION)
    except IntegrityError as exc:
        if "uq_user_account_email_live" in str(exc.orig):
            raise HTTPException(status.HTTP_409_CONFLICT, "email already registered") from None
        raise
    # Committed: from here the registration cannot be lost. Publish now; the relay covers failures.
    saga.status = runner.publish_and_wait(saga.id)
    if saga.status != SagaStatus.COMPLETED:
        response.status_code = status.HTTP_202_ACCEPTED
    response.headers["Location"] = registration_saga_url(saga.id)
    with reads() as session:
        user = session.get_one(UserAccount, user.id)
    return UserOut.model_validate(user).model_copy(update={"saga": saga_ref(saga)})


@router.get("/register/{saga_id}", response_model=SagaOut, responses=NOT_FOUND)
@router.get("/register/{saga_id}/", include_in_schema=False)
def get_registration(saga_id: uuid.UUID, session: ReadSessionDep) -> SagaOut:
    """The registration saga: its state, error and each step's state."""
    return _read_saga(session, RegistrationSaga, saga_id, "registration not found")


@router.get("/sagas/{saga_id}", response_model=SagaOut, responses=NOT_FOUND)
@router.get("/sagas/{saga_id}/", include_in_schema=False)
def get_saga(saga_id: uuid.UUID, session: ReadSessionDep) -> SagaOut:
    """Any saga (registration, deletion, restore, purge): its state, error and each step's state."""
    return _read_saga(session, Saga, saga_id, "saga not found")


def _read_saga(session: Session, kind: type[Saga], saga_id: uuid.UUID, missing: str) -> SagaOut:
    saga = session.get(kind, saga_id)
    if saga is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, missing)
    steps = session.scalars(select(SagaStep).where(SagaStep.saga_id == saga_id).order_by(SagaStep.position)).all()
    return SagaOut.model_validate(_saga_out(saga, list(steps)))


def _saga_out(saga: Saga, steps: list[SagaStep]) -> dict[str, object]:
    return {
        "id": saga.id,
        "kind": saga.kind,
        "user_id": saga.user_id,
        "status": saga.status,
        "failed_step": saga.failed_step,
        # The failed step reports its error itself, so it may follow the final state by a moment.
        "error": next((step.error for step in steps if step.step == saga.failed_step), None),
        "redrive_count": saga.redrive_count,
        "created_at": saga.created_at,
        "updated_at": saga.updated_at,
        "steps": steps,
    }


@user_router.get("/users/{user_id:int}", response_model=UserOut, responses={**NOT_FOUND, **OWNER_ONLY})
@user_router.get("/users/{user_id:int}/", include_in_schema=False)
async def get_user(user_id: UserId, reads: ReadEngineDep, subject: OwnerSubject) -> UserOut:
    ensure_owner(subject, user_id)
    user = await run_in_threadpool(queries.user_by_id, reads, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "user not found")
    return user
