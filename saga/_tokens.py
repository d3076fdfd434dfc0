"""Access and refresh tokens: the format every service verifies locally with the shared key.

The users service issues them; profile and emails verify access tokens themselves, with the
same HS256 key from their own settings, and read the revoked token ids the users service keeps
in Redis (``auth:revoked:<jti>``). One shared key is the simplest thing that works for three
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
    fam: str | None = None  # refresh tokens: the family that rotation keeps together


def encode_token(key: str, claims: Claims) -> str:
    payload: dict[str, object] = {"sub": str(claims.sub), "jti": claims.jti, "typ": claims.typ.value, "iat": claims.iat, "exp": claims.exp}
    if claims.fam is not None:
        payload["fam"] = claims.fam
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def new_claims(typ: TokenType, user_id: int, ttl_seconds: int, now: int, family: str | None = None) -> Claims:
    return Claims(sub=user_id, jti=uuid.uuid4().hex, typ=typ, iat=now, exp=now + ttl_seconds, fam=family)


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


class AccessTokenVerifier:
    """Checks an access token: signature, expiry and type, then Redis's list of revoked ids."""

    def __init__(self, key: str, store: redis.Redis) -> None:
        self.key = key
        self.store = store

    def verify(self, token: str) -> Claims:
        claims = decode_token(self.key, token, TokenType.ACCESS)
        if self.store.exists(revoked_key(claims.jti)):
            raise InvalidToken("revoked")
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
