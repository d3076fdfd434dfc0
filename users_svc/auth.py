"""Token state and login throttling, both in Redis.

Keys live on the broker's Redis (its URL and database), under ``auth:``, apart from Celery's own:

    auth:revoked:<jti>              a revoked access token, until it would have expired
    auth:family:<family>            the one valid refresh token id of a login session
    auth:user-families:<user id>    a user's sessions, to revoke them all at once
    auth:failures:account:<sha256>  failed logins for an email (hashed: no addresses in key names)
    auth:failures:address:<ip>      failed logins from a client address

That Redis runs with append-only persistence and ``noeviction``: revocations survive a restart
and are never evicted; each key expires by itself when it no longer matters.
"""

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass

import redis

from saga import Claims, InvalidToken, TokenType, encode_token, new_claims, revoked_key

from .config import Settings

log = logging.getLogger(__name__)

# Compare-and-swap of a family's current refresh token id, atomic in Redis:
# 1 rotated; 0 the family is gone (logged out, revoked, expired); -1 an old token was presented,
# so it was stolen or replayed: the family is revoked.
_ROTATE = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
if current ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  return -1
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


class RefreshReused(InvalidToken):
    """A refresh token that was already rotated: its whole family is now revoked."""


@dataclass(frozen=True)
class TokenPair:
    user_id: int
    access_token: str
    refresh_token: str
    expires_in: int


def _family_key(family: str) -> str:
    return f"auth:family:{family}"


def _user_families_key(user_id: int) -> str:
    return f"auth:user-families:{user_id}"


class TokenStore:
    """Issues token pairs, rotates refresh tokens within their family, revokes."""

    def __init__(self, settings: Settings, store: redis.Redis) -> None:
        self.key = settings.jwt_signing_key
        self.access_ttl = settings.access_token_ttl_seconds
        self.refresh_ttl = settings.refresh_token_ttl_seconds
        self.store = store
        self._rotate = store.register_script(_ROTATE)

    def _pair(self, user_id: int, family: str) -> tuple[TokenPair, Claims]:
        now = int(time.time())
        access = new_claims(TokenType.ACCESS, user_id, self.access_ttl, now)
        refresh = new_claims(TokenType.REFRESH, user_id, self.refresh_ttl, now, family=family)
        pair = TokenPair(user_id, encode_token(self.key, access), encode_token(self.key, refresh), self.access_ttl)
        return pair, refresh

    def issue(self, user_id: int) -> TokenPair:
        """A new login session: a new refresh token family."""
        pair, refresh = self._pair(user_id, uuid.uuid4().hex)
        assert refresh.fam is not None
        with self.store.pipeline() as pipe:
            pipe.set(_family_key(refresh.fam), refresh.jti, ex=self.refresh_ttl)
            pipe.sadd(_user_families_key(user_id), refresh.fam)
            pipe.expire(_user_families_key(user_id), self.refresh_ttl)
            pipe.execute()
        return pair

    def rotate(self, presented: Claims) -> TokenPair:
        """Replace the presented refresh token with a new pair in the same family."""
        assert presented.fam is not None
        pair, refresh = self._pair(presented.sub, presented.fam)
        outcome = self._rotate(keys=[_family_key(presented.fam)], args=[presented.jti, refresh.jti, self.refresh_ttl])
        if outcome == -1:
            log.warning("user %s: refresh token reused; family %s revoked", presented.sub, presented.fam)
            raise RefreshReused("refresh token already used")
        if outcome == 0:
            raise InvalidToken("the session was revoked or has expired")
        self.store.expire(_user_families_key(presented.sub), self.refresh_ttl)
        return pair

    def revoke_access(self, claims: Claims) -> None:
        remaining = claims.exp - int(time.time())
        if remaining > 0:
            self.store.set(revoked_key(claims.jti), 1, ex=remaining)

    def revoke_family(self, family: str) -> None:
        self.store.delete(_family_key(family))

    def revoke_all_refresh(self, user_id: int) -> None:
        """Every login session of the user: their refresh tokens stop working."""
        families = self.store.smembers(_user_families_key(user_id))
        keys = [_family_key(f.decode() if isinstance(f, bytes) else str(f)) for f in families]
        self.store.delete(*keys, _user_families_key(user_id))


class LoginLimiter:
    """Failed logins counted per account and per client address, in fixed windows."""

    def __init__(self, settings: Settings, store: redis.Redis) -> None:
        self.window = settings.login_failure_window_seconds
        self.per_account = settings.login_max_failures_per_account
        self.per_address = settings.login_max_failures_per_address
        self.store = store

    @staticmethod
    def _account_key(email: str) -> str:
        return f"auth:failures:account:{hashlib.sha256(email.strip().lower().encode()).hexdigest()}"

    def _counters(self, email: str, address: str) -> list[tuple[str, int]]:
        return [(self._account_key(email), self.per_account), (f"auth:failures:address:{address}", self.per_address)]

    def retry_after(self, email: str, address: str) -> int | None:
        """Seconds until another attempt is allowed, or None if it is allowed now."""
        counters = self._counters(email, address)
        with self.store.pipeline() as pipe:
            for key, _ in counters:
                pipe.get(key)
                pipe.ttl(key)
            replies = pipe.execute()
        waits = [
            ttl if ttl > 0 else self.window
            for (_, limit), count, ttl in zip(counters, replies[::2], replies[1::2], strict=True)
            if count is not None and int(count) >= limit
        ]
        return max(waits) if waits else None

    def record_failure(self, email: str, address: str) -> None:
        with self.store.pipeline() as pipe:
            for key, _ in self._counters(email, address):
                pipe.incr(key)
                pipe.expire(key, self.window, nx=True)  # the window starts at its first failure
            pipe.execute()

    def forget_account(self, email: str) -> None:
        """A successful login clears the account's count (not the address's)."""
        self.store.delete(self._account_key(email))
