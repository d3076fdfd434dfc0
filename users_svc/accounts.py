"""The current account: reading and changing it, deleting it (a saga) and restoring it (a saga)."""

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from saga import ReadSessionFactoryDep, SagaKind, SessionFactoryDep, unauthorized

from . import engine
from .api import saga_ref, throttle
from .deps import (
    INVALID_TOKEN,
    ClientAddress,
    CurrentUser,
    LoginLimiterDep,
    PasswordsDep,
    ReadSessionDep,
    SagaRunner,
    SagaRunnerDep,
    SettingsDep,
    ThrottleDep,
    TokenStoreDep,
    can_log_in,
)
from .login import NOT_ACTIVE, THROTTLED, UNAUTHORIZED, check_password, count_attempt, find_by_email
from .models import AccountStatus, RegistrationSaga, Saga, SagaStatus, UserAccount
from .schemas import ErrorOut, LoginRequest, MeUpdate, SagaRef, UserOut

router = APIRouter(prefix="/v1", tags=["accounts"])


def _user_out(session: Session, user: UserAccount) -> UserOut:
    saga = session.scalar(select(RegistrationSaga).where(RegistrationSaga.user_id == user.id))
    return UserOut.model_validate(user).model_copy(update={"saga": saga_ref(saga) if saga else None})


@router.get("/users/me", response_model=UserOut, responses=UNAUTHORIZED)
@router.get("/users/me/", include_in_schema=False)
def get_me(session: ReadSessionDep, me: CurrentUser) -> UserOut:
    return _user_out(session, me.user)


@router.patch(
    "/users/me",
    response_model=UserOut,
    responses={**UNAUTHORIZED, 403: {"model": ErrorOut, "description": "current password is incorrect"}, **THROTTLED},
)
@router.patch("/users/me/", include_in_schema=False)
def update_me(
    body: MeUpdate,
    me: CurrentUser,
    sessions: SessionFactoryDep,
    tokens: TokenStoreDep,
    passwords: PasswordsDep,
    limiter: LoginLimiterDep,
    address: ClientAddress,
) -> UserOut:
    """Change names, or the password (with the current one): that ends every session, this one too."""
    if body.password is not None:
        count_attempt(limiter, me.user.email, address)
    with sessions.begin() as session:
        user = session.get_one(UserAccount, me.user.id, with_for_update=True)
        if not can_log_in(user):  # deleted since the token was checked
            raise unauthorized(INVALID_TOKEN)
        if body.password is not None:
            assert body.current_password is not None
            if not passwords.verify(user.password_hash, body.current_password):
                raise HTTPException(status.HTTP_403_FORBIDDEN, "current password is incorrect")
            limiter.succeeded(me.user.email, address)
            user.password_hash = passwords.hash(body.password)
            # Before the commit: with Redis down the change fails (503) rather than leave sessions alive.
            tokens.end_sessions(user.id)
        if body.first_name is not None:
            user.first_name = body.first_name
        if body.last_name is not None:
            user.last_name = body.last_name
        session.flush()
        out = _user_out(session, user)
    if body.password is not None:
        tokens.end_sessions(user.id)  # and after it: a login that read the old hash gets refused tokens
    return out


@router.delete(
    "/users/me",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SagaRef,
    responses={**UNAUTHORIZED, 200: {"model": SagaRef, "description": "the deletion saga completed"}, 409: {"model": ErrorOut}},
)
@router.delete("/users/me/", include_in_schema=False, status_code=status.HTTP_202_ACCEPTED)
def delete_me(
    response: Response, me: CurrentUser, sessions: SessionFactoryDep, tokens: TokenStoreDep, runner: SagaRunnerDep, settings: SettingsDep
) -> SagaRef:
    """Deactivate the account now and run the deletion saga; the account can be restored for a while.

    200 when the saga completed within the wait, 202 (with the saga's URL) otherwise.
    """
    now = datetime.now(UTC)
    with sessions.begin() as session:
        user = session.get_one(UserAccount, me.user.id, with_for_update=True)
        if user.account_status != AccountStatus.ACTIVE:
            raise HTTPException(status.HTTP_409_CONFLICT, NOT_ACTIVE[AccountStatus(user.account_status)])
        user.account_status = AccountStatus.DELETING
        user.deleted_at = now
        user.purge_after = now + timedelta(seconds=settings.restore_grace_seconds)
        saga = engine.start_saga(session, user, SagaKind.DELETION)
        # Before the commit: with Redis down nothing changes (503) rather than tokens outliving the account.
        tokens.end_sessions(user.id)
    tokens.end_sessions(user.id)  # and after it: a login that read the account still active gets refused tokens
    return _answer(runner, response, saga)


@router.post(
    "/users/restore",
    response_model=UserOut,
    responses={
        **UNAUTHORIZED,
        202: {"model": UserOut, "description": "accepted; the restore saga is still running or failed"},
        409: {"model": ErrorOut, "description": "the account is not deleted, or a deletion or restore is in progress"},
        410: {"model": ErrorOut, "description": "the restore period has ended"},
        **THROTTLED,
    },
)
@router.post("/users/restore/", include_in_schema=False)
def restore(
    body: LoginRequest,
    response: Response,
    sessions: SessionFactoryDep,
    reads: ReadSessionFactoryDep,
    runner: SagaRunnerDep,
    passwords: PasswordsDep,
    limiter: LoginLimiterDep,
    limits: ThrottleDep,
    address: ClientAddress,
) -> UserOut:
    """Restore a deleted account within the restore period, with its email and password.

    200 with the user when the restore saga completed within the wait, 202 otherwise; then log in.
    """
    throttle(limits, "restore", address)
    count_attempt(limiter, body.email, address)
    with sessions.begin() as session:
        user = check_password(passwords, limiter, find_by_email(session, body.email, lock=True), body.email, body.password, address)
        if user.account_status == AccountStatus.ACTIVE:
            raise HTTPException(status.HTTP_409_CONFLICT, "account is not deleted")
        if user.account_status in (AccountStatus.DELETING, AccountStatus.RESTORING):
            raise HTTPException(status.HTTP_409_CONFLICT, NOT_ACTIVE[AccountStatus(user.account_status)])
        if user.account_status != AccountStatus.DELETED or user.purge_after is None or user.purge_after <= datetime.now(UTC):
            raise HTTPException(status.HTTP_410_GONE, "the restore period has ended")
        user.account_status = AccountStatus.RESTORING
        saga = engine.start_saga(session, user, SagaKind.RESTORE)
    ref = _answer(runner, response, saga)
    with reads() as session:
        return _user_out(session, session.get_one(UserAccount, user.id)).model_copy(update={"saga": ref})


def _answer(runner: SagaRunner, response: Response, saga: Saga) -> SagaRef:
    """Publish a committed saga, wait briefly, answer with its state: 200 when it completed, else 202."""
    saga.status = runner.publish_and_wait(saga.id)
    response.status_code = status.HTTP_200_OK if saga.status == SagaStatus.COMPLETED else status.HTTP_202_ACCEPTED
    ref = saga_ref(saga)
    response.headers["Location"] = ref.url
    return ref
