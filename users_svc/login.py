"""Logging in and out: a password for an access and a refresh token, refreshing them, ending sessions.

Password attempts are counted per account and per client address (``throttle.py``); an unknown
email costs what a wrong password costs.
"""

import logging

from fastapi import APIRouter, HTTPException, Response, status
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from saga import ROLE_OPERATOR, InvalidToken, TokenType, decode_token, unauthorized

from .api import BUSY, throttle
from .auth import RefreshReused, TokenPair
from .deps import AccessClaims, ClientAddress, LoginLimiterDep, PasswordsDep, SessionDep, ThrottleDep, TokenStoreDep, can_log_in
from .hashing import Passwords
from .models import AccountStatus, RegistrationStatus, UserAccount
from .schemas import ErrorOut, LoginRequest, LogoutRequest, RefreshRequest, Responses, TokenOut
from .throttle import LoginLimiter

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["accounts"])

INVALID_LOGIN = "invalid email or password"
# Why a user who knows the password still may not log in.
NOT_ACTIVE = {
    AccountStatus.DELETING: "account deletion in progress",
    AccountStatus.DELETED: "account deleted; it can be restored with POST /v1/users/restore",
    AccountStatus.RESTORING: "account restore in progress",
    AccountStatus.PURGING: "account deleted",
}
UNAUTHORIZED: Responses = {401: {"model": ErrorOut}}
THROTTLED: Responses = {429: {"model": ErrorOut, "description": "too many requests or failed logins; see Retry-After"}, **BUSY}


def count_attempt(limiter: LoginLimiter, email: str, address: str) -> None:
    """Count a password attempt before checking it (429 once over a limit); a right one is given back."""
    retry_after = limiter.reserve(email, address)
    if retry_after is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, "too many failed logins, try again later", headers={"Retry-After": str(retry_after)}
        )


def find_by_email(session: Session, email: str, *, lock: bool = False) -> UserAccount | None:
    """The account holding the email; if only failed registrations do, the latest of them."""
    query = (
        select(UserAccount)
        .where(func.lower(UserAccount.email) == email.strip().lower(), UserAccount.account_status != AccountStatus.PURGED)
        .order_by((UserAccount.registration_status == RegistrationStatus.FAILED).asc(), UserAccount.id.desc())
        .limit(1)
    )
    return session.scalar(query.with_for_update() if lock else query)


def check_password(
    passwords: Passwords, limiter: LoginLimiter, user: UserAccount | None, email: str, password: str, address: str
) -> UserAccount:
    """The user if the password is theirs, else 401 (the attempt was counted by count_attempt).

    An unknown email costs a hash verification too (against a dummy hash made at startup with
    the current parameters), so the answer's timing does not tell which accounts exist.
    """
    if not passwords.verify(user.password_hash if user else None, password) or user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, INVALID_LOGIN)
    limiter.succeeded(email, address)
    return user


def _token_out(pair: TokenPair) -> TokenOut:
    return TokenOut(user_id=pair.user_id, access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


@router.post(
    "/auth/login",
    response_model=TokenOut,
    responses={**UNAUTHORIZED, 403: {"model": ErrorOut, "description": "registration not completed, or account deleted"}, **THROTTLED},
)
@router.post("/auth/login/", include_in_schema=False)
def login(
    body: LoginRequest,
    session: SessionDep,
    tokens: TokenStoreDep,
    passwords: PasswordsDep,
    limiter: LoginLimiterDep,
    limits: ThrottleDep,
    address: ClientAddress,
) -> TokenOut:
    """Log in with email and password: a short-lived access token and a refresh token.

    A wrong email and a wrong password get the same 401. Logins are limited per client address,
    failed ones per account and per client address (429 with Retry-After).
    """
    throttle(limits, "login", address)
    count_attempt(limiter, body.email, address)
    user = find_by_email(session, body.email)
    valid_after = 0
    if user is not None:
        # The valid-after first, then the password hash read again (READ COMMITTED: the latest
        # committed). A password change commits, then moves the valid-after: either this login
        # sees the new hash, or its tokens carry a valid-after the change has moved past.
        valid_after = tokens.valid_after(user.id)
        session.refresh(user)
    user = check_password(passwords, limiter, user, body.email, body.password, address)
    if user.registration_status != RegistrationStatus.COMPLETED:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "registration not completed")
    if user.account_status != AccountStatus.ACTIVE:
        raise HTTPException(status.HTTP_403_FORBIDDEN, NOT_ACTIVE[AccountStatus(user.account_status)])
    if passwords.needs_rehash(user.password_hash):  # made with older parameters: upgrade it now
        # Only if the hash is still the one checked: never over a password changed meanwhile.
        session.execute(
            update(UserAccount)
            .where(UserAccount.id == user.id, UserAccount.password_hash == user.password_hash)
            .values(password_hash=passwords.hash(body.password))
            .execution_options(synchronize_session=False)
        )
        log.info("user %s: password hash upgraded to the current parameters", user.id)
    return _token_out(tokens.issue(user.id, valid_after, ROLE_OPERATOR if user.is_operator else None))


@router.post("/auth/refresh", response_model=TokenOut, responses=UNAUTHORIZED)
@router.post("/auth/refresh/", include_in_schema=False)
def refresh(body: RefreshRequest, session: SessionDep, tokens: TokenStoreDep) -> TokenOut:
    """Trade a refresh token for a new pair; the old one stops working.

    Presenting a refresh token that was already used revokes its whole family (every token
    issued from that login): someone else has a copy.
    """
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


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, responses=UNAUTHORIZED)
@router.post("/auth/logout/", include_in_schema=False, status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def logout(body: LogoutRequest, claims: AccessClaims, tokens: TokenStoreDep) -> Response:
    """Revoke the presented access token and the session: its refresh token and access tokens."""
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


@router.post("/auth/logout-all", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, responses=UNAUTHORIZED)
@router.post("/auth/logout-all/", include_in_schema=False, status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def logout_all(claims: AccessClaims, tokens: TokenStoreDep) -> Response:
    """End every session of the user, everywhere: every token issued until now is refused."""
    tokens.end_sessions(claims.sub)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
