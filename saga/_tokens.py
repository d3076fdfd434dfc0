"""Access and refresh tokens: the format every service verifies locally with the shared key.

The users service issues them; profile and emails verify access tokens themselves, with the
same HS256 key from their own settings, and read the session state the users service keeps in
Redis: revoked token ids (``auth:revoked:<jti>``), revoked login sessions
(``auth:revoked-family:<family>``) and each user's valid-after (``auth:valid-after:<user id>``),
which ends every session issued before it. One shared key is the simplest thing that works for three
services run by one team, with one secret to rotate; asymmetric keys (RS256/EdDSA, the users
service alone holding the private key) are the upgrade path if services stop trusting each other.
"""

import logging
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import jwt
import redis
from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

log = logging.getLogger("saga.tokens")

ALGORITHM = "HS256"
MIN_KEY_BYTES = 32  # RFC 7518 3.2: an HS256 key is at least as long as the hash
# The development default: usable only because it is loud, refused in production (saga/_settings.py).
DEV_SIGNING_KEY = "development-only-jwt-signing-key--never-use-in-production"
REVOKED_PREFIX = "auth:revoked:"
REVOKED_FAMILY_PREFIX = "auth:revoked-family:"
VALID_AFTER_PREFIX = "auth:valid-after:"


class TokenType(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


class InvalidToken(Exception):
    """Malformed, badly signed, expired, of the wrong type, or revoked."""


@dataclass(frozen=True)
class Claims:
    sub: int  # the user id (a string in the token, as RFC 7519 wants)
    jti: str
    typ: TokenType
    iat: int
    exp: int
    fam: str | None = None  # the login session ("family") the token belongs to; every refresh token has one
    # The user's valid-after when the session began (ms; see valid_after_key): the token is refused
    # once the user's valid-after moves past it. Tokens from before the claim existed count as 0.
    vaf: int = 0
    role: str | None = None  # "operator" for the users service's operators (ROLE_OPERATOR)


ROLE_OPERATOR = "operator"


def encode_token(key: str, claims: Claims) -> str:
    payload: dict[str, object] = {"sub": str(claims.sub), "jti": claims.jti, "typ": claims.typ.value, "iat": claims.iat, "exp": claims.exp}
    if claims.fam is not None:
        payload["fam"] = claims.fam
    if claims.vaf:
        payload["vaf"] = claims.vaf
    if claims.role:
        payload["role"] = claims.role
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def new_claims(
    typ: TokenType,
    user_id: int,
    ttl_seconds: int,
    now: int,
    family: str | None = None,
    *,
    valid_after: int = 0,
    jti: str | None = None,
    role: str | None = None,
) -> Claims:
    return Claims(sub=user_id, jti=jti or uuid.uuid4().hex, typ=typ, iat=now, exp=now + ttl_seconds, fam=family, vaf=valid_after, role=role)


def decode_token(key: str, token: str, expected: TokenType) -> Claims:
    """Verify signature, expiry and type; the algorithm is fixed, so ``alg: none`` is refused."""
    try:
        payload = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": ["sub", "jti", "typ", "iat", "exp"]})
        claims = Claims(
            sub=int(payload["sub"]),
            jti=str(payload["jti"]),
            typ=TokenType(payload["typ"]),
            iat=int(payload["iat"]),
            exp=int(payload["exp"]),
            fam=str(payload["fam"]) if "fam" in payload else None,
            vaf=int(payload.get("vaf", 0)),
            role=str(payload["role"]) if "role" in payload else None,
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidToken(f"{type(exc).__name__}: {exc}") from None
    if claims.typ != expected:
        raise InvalidToken(f"a {claims.typ} token where an {expected} token was expected")
    if claims.typ == TokenType.REFRESH and not claims.fam:
        raise InvalidToken("a refresh token without a family")
    return claims


def revoked_key(jti: str) -> str:
    return f"{REVOKED_PREFIX}{jti}"


def revoked_family_key(family: str) -> str:
    return f"{REVOKED_FAMILY_PREFIX}{family}"


def valid_after_key(user_id: int) -> str:
    """The user's valid-after: an instant in ms, moved forward whenever all their sessions end.

    A token carries the value it was issued under (``vaf``) and is refused once the stored value
    is greater. The users service reads it before it checks a password, so a login racing a
    password change either sees the new password or gets a token the change's valid-after refuses.
    """
    return f"{VALID_AFTER_PREFIX}{user_id}"


def session_ended(store: redis.Redis, claims: Claims) -> str | None:
    """Why the token's session has ended (revoked token or family, valid-after passed), or None.

    One MGET: one Redis round trip per verified request.
    """
    family = revoked_family_key(claims.fam) if claims.fam else None
    keys = [valid_after_key(claims.sub), revoked_key(claims.jti), *([family] if family else [])]
    valid_after, revoked, *family_revoked = store.mget(keys)
    if revoked is not None:
        return "revoked"
    if family_revoked and family_revoked[0] is not None:
        return "session revoked"
    if valid_after is not None and claims.vaf < int(valid_after):
        return "issued before the user's sessions were ended"
    return None


class AccessTokenVerifier:
    """Checks an access token: signature, expiry and type, then the session state in Redis."""

    def __init__(self, key: str, store: redis.Redis) -> None:
        self.key = key
        self.store = store

    def verify(self, token: str) -> Claims:
        claims = decode_token(self.key, token, TokenType.ACCESS)
        reason = session_ended(self.store, claims)
        if reason is not None:
            raise InvalidToken(reason)
        return claims


bearer_scheme = HTTPBearer(auto_error=False, description="An access token from POST /v1/auth/login")
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def verified_claims(verifier: AccessTokenVerifier, credentials: HTTPAuthorizationCredentials | None) -> Claims:
    if credentials is None:
        raise unauthorized("not authenticated")
    try:
        return verifier.verify(credentials.credentials)
    except InvalidToken as exc:
        log.info("access token refused: %s", exc)
        raise unauthorized("invalid or expired token") from None


async def token_subject(request: Request) -> int | None:
    """The user id an access token speaks for; None when the service does not require tokens.

    A service that requires them sets ``app.state.token_verifier``; one that does not leaves it
    None. The scheme is read here rather than declared, so that the OpenAPI docs show it only
    where it is required (see ``token_security``).
    """
    return await subject_if_required(request, request.app.state.token_verifier)


async def subject_if_required(request: Request, verifier: AccessTokenVerifier | None) -> int | None:
    """The subject of the request's access token checked by ``verifier``; None without a verifier."""
    if verifier is None:
        return None
    return verified_claims(verifier, await bearer_scheme(request)).sub


TokenSubject = Annotated[int | None, Depends(token_subject)]


def token_security(required: bool) -> list[Any]:
    """Router dependencies that put the bearer scheme in the OpenAPI docs, when tokens are required."""
    return [Security(bearer_scheme)] if required else []


def ensure_owner(subject: int | None, user_id: int) -> None:
    """403 unless tokens are not required or the token's subject is the user addressed."""
    if subject is not None and subject != user_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the token does not grant access to this user")
