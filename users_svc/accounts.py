"""Accounts: login with access and refresh tokens, the current user, deletion and restore."""

import logging
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from saga import ROLE_OPERATOR, InvalidToken, SagaKind, TokenType, decode_token, unauthorized

from . import engine, outbox
from .api import BUSY, client_address, saga_ref, throttle
from .auth import LoginLimiter, RefreshReused, TokenPair, TokenStore
from .deps import INVALID_TOKEN, AccessClaims, CurrentUser, ReadSessionDep, SessionDep, can_log_in
from .models import AccountStatus, RegistrationSaga, RegistrationStatus, Saga, SagaStatus, UserAccount
from .schemas import ErrorOut, LoginRequest, LogoutRequest, MeUpdate, RefreshRequest, Responses, SagaRef, TokenOut, UserOut

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["accounts"])

INVALID_LOGIN = "invalid email or password"
# Why a user who knows the password still may not log in.
_NOT_ACTIVE = {
    AccountStatus.DELETING: "account deletion in progress",
    AccountStatus.DELETED: "account deleted; it can be restored with POST /v1/users/restore",
    AccountStatus.RESTORING: "account restore in progress",
    AccountStatus.PURGING: "account deleted",
}
_errors: Responses = {401: {"model": ErrorOut}}
_THROTTLED: Responses = {429: {"model": ErrorOut, "description": "too many requests or failed logins; see Retry-After"}, **BUSY}


# --- helpers ------------------------------------------------------------------------------


def _count_attempt(request: Request, email: str) -> None:
    """Count a password attempt before checking it (429 once over a limit); a right one is given back."""
    limiter: LoginLimiter = request.app.state.limiter
    retry_after = limiter.reserve(email, client_address(request))
    if retry_after is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, "too many failed logins, try again later", headers={"Retry-After": str(retry_after)}
        )


def _find_by_email(session: Session, email: str, *, lock: bool = False) -> UserAccount | None:
    """The account holding the email; if only failed registrations do, the latest of them."""
    query = (
        select(UserAccount)
        .where(func.lower(UserAccount.email) == email.strip().lower(), UserAccount.account_status != AccountStatus.PURGED)
        .order_by((UserAccount.registration_status == RegistrationStatus.FAILED).asc(), UserAccount.id.desc())
        .limit(1)
    )
    return session.scalar(query.with_for_update() if lock else query)


def _check_password(request: Request, user: UserAccount | None, email: str, password: str) -> UserAccount:
    """The user if the password is theirs, else 401 (the attempt was counted by _count_attempt).

    An unknown email costs a hash verification too (against a dummy hash made at startup with
    the current parameters), so the answer's timing does not tell which accounts exist.
    """
    if not _verify(request, user.password_hash if user else request.app.state.dummy_hash, password) or user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, INVALID_LOGIN)
    request.app.state.limiter.succeeded(email, client_address(request))
    return user


def _verify(request: Request, password_hash: str, password: str) -> bool:
    hasher: PasswordHasher = request.app.state.hasher
    with request.app.state.hash_slots.slot():  # as many at once as memory and cores allow (users_svc/hashing.py)
        try:
            return hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def _hash(request: Request, password: str) -> str:
    with request.app.state.hash_slots.slot():
        hashed: str = request.app.state.hasher.hash(password)
    return hashed


def _token_out(pair: TokenPair) -> TokenOut:
    return TokenOut(user_id=pair.user_id, access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


def _user_out(session: Session, user: UserAccount) -> UserOut:
    saga = session.scalar(select(RegistrationSaga).where(RegistrationSaga.user_id == user.id))
    return UserOut.model_validate(user).model_copy(update={"saga": saga_ref(saga) if saga else None})


# --- authentication -----------------------------------------------------------------------


@router.post(
    "/auth/login",
    response_model=TokenOut,
    responses={**_errors, 403: {"model": ErrorOut, "description": "registration not completed, or account deleted"}, **_THROTTLED},
)
@router.post("/auth/login/", include_in_schema=False)
def login(body: LoginRequest, request: Request, session: SessionDep) -> TokenOut:
    """Log in with email and password: a short-lived access token and a refresh token.

    A wrong email and a wrong password get the same 401. Logins are limited per client address,
    failed ones per account and per client address (429 with Retry-After).
    """
    throttle(request, "login")
    _count_attempt(request, body.email)
    tokens: TokenStore = request.app.state.tokens
    user = _find_by_email(session, body.email)
    valid_after = 0
    if user is not None:
        # The valid-after first, then the password hash read again (READ COMMITTED: the latest
        # committed). A password change commits, then moves the valid-after: either this login
        # sees the new hash, or its tokens carry a valid-after the change has moved past.
        valid_after = tokens.valid_after(user.id)
        session.refresh(user)
    user = _check_password(request, user, body.email, body.password)
    if user.registration_status != RegistrationStatus.COMPLETED:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "registration not completed")
    if user.account_status != AccountStatus.ACTIVE:
        raise HTTPException(status.HTTP_403_FORBIDDEN, _NOT_ACTIVE[AccountStatus(user.account_status)])
    hasher: PasswordHasher = request.app.state.hasher
    if hasher.check_needs_rehash(user.password_hash):  # made with older parameters: upgrade it now
        # Only if the hash is still the one checked: never over a password changed meanwhile.
        session.execute(
            update(UserAccount)
            .where(UserAccount.id == user.id, UserAccount.password_hash == user.password_hash)
            .values(password_hash=_hash(request, body.password))
            .execution_options(synchronize_session=False)
        )
        log.info("user %s: password hash upgraded to the current parameters", user.id)
    return _token_out(tokens.issue(user.id, valid_after, ROLE_OPERATOR if user.is_operator else None))


@router.post("/auth/refresh", response_model=TokenOut, responses=_errors)
@router.post("/auth/refresh/", include_in_schema=False)
def refresh(body: RefreshRequest, request: Request, session: SessionDep) -> TokenOut:
    """Trade a refresh token for a new pair; the old one stops working.

    Presenting a refresh token that was already used revokes its whole family (every token
    issued from that login): someone else has a copy.
    """
    tokens: TokenStore = request.app.state.tokens
    try:
        claims = decode_token(tokens.key, body.refresh_token, TokenType.REFRESH)
    except InvalidToken:
        raise unauthorized("invalid or expired refresh token") from None
    assert claims.fam is not None
    user = session.get(UserAccount, claims.sub)
    if user is None or not can_log_in(user):
        tokens.revoke_family(claims.fam)
        raise unauthorized("invalid or expired refresh token")
    try:
        return _token_out(tokens.rotate(claims))
    except RefreshReused:
        raise unauthorized("refresh token already used: the session is revoked, log in again") from None
    except InvalidToken:
        raise unauthorized("invalid or expired refresh token") from None


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, responses=_errors)
@router.post("/auth/logout/", include_in_schema=False, status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def logout(body: LogoutRequest, request: Request, claims: AccessClaims) -> Response:
    """Revoke the presented access token and the session: its refresh token and access tokens."""
    tokens: TokenStore = request.app.state.tokens
    tokens.revoke_access(claims)
    if claims.fam:
        tokens.revoke_family(claims.fam)
    try:
        presented = decode_token(tokens.key, body.refresh_token, TokenType.REFRESH)
    except InvalidToken:
        presented = None  # expired or malformed: nothing left to revoke
    # Only the caller's own session: a refresh token of someone else's is left alone.
    if presented is not None and presented.sub == claims.sub and presented.fam and presented.fam != claims.fam:
        tokens.revoke_family(presented.fam)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/auth/logout-all", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, responses=_errors)
@router.post("/auth/logout-all/", include_in_schema=False, status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def logout_all(request: Request, claims: AccessClaims) -> Response:
    """End every session of the user, everywhere: every token issued until now is refused."""
    request.app.state.tokens.end_sessions(claims.sub)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- the current user -----------------------------------------------------------------------


@router.get("/users/me", response_model=UserOut, responses=_errors)
@router.get("/users/me/", include_in_schema=False)
def get_me(session: ReadSessionDep, me: CurrentUser) -> UserOut:
    return _user_out(session, me.user)


@router.patch(
    "/users/me",
    response_model=UserOut,
    responses={**_errors, 403: {"model": ErrorOut, "description": "current password is incorrect"}, **_THROTTLED},
)
@router.patch("/users/me/", include_in_schema=False)
def update_me(body: MeUpdate, request: Request, me: CurrentUser) -> UserOut:
    """Change names, or the password (with the current one): that ends every session, this one too."""
    state = request.app.state
    tokens: TokenStore = state.tokens
    if body.password is not None:
        _count_attempt(request, me.user.email)
    with state.sessions.begin() as session:
        user = session.get_one(UserAccount, me.user.id, with_for_update=True)
        if not can_log_in(user):  # deleted since the token was checked
            raise unauthorized(INVALID_TOKEN)
        if body.password is not None:
            assert body.current_password is not None
            if not _verify(request, user.password_hash, body.current_password):
                raise HTTPException(status.HTTP_403_FORBIDDEN, "current password is incorrect")
            state.limiter.succeeded(me.user.email, client_address(request))
            user.password_hash = _hash(request, body.password)
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
    responses={**_errors, 200: {"model": SagaRef, "description": "the deletion saga completed"}, 409: {"model": ErrorOut}},
)
@router.delete("/users/me/", include_in_schema=False, status_code=status.HTTP_202_ACCEPTED)
def delete_me(request: Request, response: Response, me: CurrentUser) -> SagaRef:
    """Deactivate the account now and run the deletion saga; the account can be restored for a while.

    200 when the saga completed within the wait, 202 (with the saga's URL) otherwise.
    """
    state = request.app.state
    now = datetime.now(UTC)
    with state.sessions.begin() as session:
        user = session.get_one(UserAccount, me.user.id, with_for_update=True)
        if user.account_status != AccountStatus.ACTIVE:
            raise HTTPException(status.HTTP_409_CONFLICT, _NOT_ACTIVE[AccountStatus(user.account_status)])
        user.account_status = AccountStatus.DELETING
        user.deleted_at = now
        user.purge_after = now + timedelta(seconds=state.settings.restore_grace_seconds)
        saga = engine.start_saga(session, user, SagaKind.DELETION)
        # Before the commit: with Redis down nothing changes (503) rather than tokens outliving the account.
        state.tokens.end_sessions(user.id)
    state.tokens.end_sessions(user.id)  # and after it: a login that read the account still active gets refused tokens
    return _run(request, response, saga)


@router.post(
    "/users/restore",
    response_model=UserOut,
    responses={
        **_errors,
        202: {"model": UserOut, "description": "accepted; the restore saga is still running or failed"},
        409: {"model": ErrorOut, "description": "the account is not deleted, or a deletion or restore is in progress"},
        410: {"model": ErrorOut, "description": "the restore period has ended"},
        **_THROTTLED,
    },
)
@router.post("/users/restore/", include_in_schema=False)
def restore(body: LoginRequest, request: Request, response: Response) -> UserOut:
    """Restore a deleted account within the restore period, with its email and password.

    200 with the user when the restore saga completed within the wait, 202 otherwise; then log in.
    """
    state = request.app.state
    throttle(request, "restore")
    _count_attempt(request, body.email)
    with state.sessions.begin() as session:
        user = _check_password(request, _find_by_email(session, body.email, lock=True), body.email, body.password)
        if user.account_status == AccountStatus.ACTIVE:
            raise HTTPException(status.HTTP_409_CONFLICT, "account is not deleted")
        if user.account_status in (AccountStatus.DELETING, AccountStatus.RESTORING):
            raise HTTPException(status.HTTP_409_CONFLICT, _NOT_ACTIVE[AccountStatus(user.account_status)])
        if user.account_status != AccountStatus.DELETED or user.purge_after is None or user.purge_after <= datetime.now(UTC):
            raise HTTPException(status.HTTP_410_GONE, "the restore period has ended")
        user.account_status = AccountStatus.RESTORING
        saga = engine.start_saga(session, user, SagaKind.RESTORE)
    ref = _run(request, response, saga)
    with state.reads() as session:
        return _user_out(session, session.get_one(UserAccount, user.id)).model_copy(update={"saga": ref})


def _run(request: Request, response: Response, saga: Saga) -> SagaRef:
    """Publish a committed saga (the relay covers failures), wait briefly, answer with its state."""
    state = request.app.state
    outbox.publish_outbox(state.sessions, state.celery, saga_id=saga.id)
    saga.status = engine.wait_for_final(state.reads, saga.id, state.settings.register_wait_seconds)
    response.status_code = status.HTTP_200_OK if saga.status == SagaStatus.COMPLETED else status.HTTP_202_ACCEPTED
    ref = saga_ref(saga)
    response.headers["Location"] = ref.url
    return ref
