"""Token state, failed-attempt limits and request throttling, all in Redis.

Keys live on the broker's Redis (its URL and database), under ``auth:``, apart from Celery's own:

    auth:valid-after:<user id>      the user's valid-after (ms): tokens issued under an older value are refused
    auth:revoked:<jti>              a revoked access token, until it would have expired
    auth:revoked-family:<family>    a revoked login session: its access tokens, until they would have expired
    auth:family:<family>            the one valid refresh token id of a login session
    auth:rotated:<jti>              a refresh token just rotated: when, for the concurrent-refresh leeway
    auth:failures:account:<sha256>  attempts at an account's password (hashed: no addresses in key names)
    auth:failures:address:<ip>      failed password attempts from a client address
    auth:throttle/...               requests per client address (the ``limits`` package's moving windows)

That Redis runs with append-only persistence and ``noeviction``: revocations survive a restart
and are never evicted; each key expires by itself when it no longer matters.
"""

import hashlib
import logging
import math
import time
import uuid
from dataclasses import dataclass

import redis
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from saga import Claims, InvalidToken, TokenType, encode_token, new_claims, revoked_family_key, revoked_key, valid_after_key

from .config import Settings

log = logging.getLogger(__name__)

# Ending every session of a user: the valid-after becomes the later of Redis's clock (ms) and one
# past its current value, so it only ever grows, even within a millisecond; it is kept as long as
# a refresh token lives, after which every token issued under an older value has expired (and a
# later end restarts from the clock, above every value handed out).
_END_SESSIONS = """
local now = redis.call('TIME')
local clock = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local valid_after = math.max(clock, current + 1)
redis.call('SET', KEYS[1], valid_after, 'EX', ARGV[1])
return valid_after
"""

# Rotating a family's refresh token, atomic in Redis. KEYS: family, rotated:<presented jti>,
# valid-after, revoked-family. ARGV: presented jti, successor jti, refresh ttl, now, leeway (s),
# the presented token's vaf, access ttl. Answers {1, iat of the new pair}; {0} the session is
# over (logged out, revoked, expired, or its valid-after passed); {-1} an old token was presented
# after the leeway, so it was stolen or replayed: the family and its access tokens are revoked.
# Within the leeway, while the successor is still the family's token, a second refresh of the
# same token is answered with the same new pair (the caller rebuilds it from the recorded iat).
_ROTATE = """
local valid_after = tonumber(redis.call('GET', KEYS[3]) or '0')
if tonumber(ARGV[6]) < valid_after then return {0} end
local current = redis.call('GET', KEYS[1])
if not current then return {0} end
if current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  if tonumber(ARGV[5]) > 0 then redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[5]) end
  return {1, tonumber(ARGV[4])}
end
if current == ARGV[2] then
  local issued = redis.call('GET', KEYS[2])
  if issued then return {1, tonumber(issued)} end
end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[4], 1, 'EX', ARGV[7])
return {-1}
"""

# Count first: an attempt is counted before the password is checked, so parallel guesses cannot
# all pass a check made before any of them was counted. KEYS: the counters; ARGV[1] the window,
# ARGV[i + 1] the limit of KEYS[i]. Answers 0 (counted, go on) or the seconds to wait.
_RESERVE = """
local wait = 0
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[i + 1]) then
    local ttl = redis.call('TTL', key)
    if ttl <= 0 then ttl = tonumber(ARGV[1]) end
    wait = math.max(wait, ttl)
  end
end
if wait > 0 then return wait end
for _, key in ipairs(KEYS) do
  redis.call('INCR', key)
  redis.call('EXPIRE', key, ARGV[1], 'NX')
end
return 0
"""

# A right password: the account's count is cleared, the address's attempt given back.
_REFUND = """
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 and tonumber(redis.call('GET', KEYS[2])) > 0 then redis.call('DECR', KEYS[2]) end
return 0
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


def _rotated_key(jti: str) -> str:
    return f"auth:rotated:{jti}"


def _successor(jti: str, typ: TokenType) -> str:
    """The id of the token a rotation of ``jti`` issues: the same for two concurrent rotations."""
    return uuid.uuid5(uuid.NAMESPACE_OID, f"{jti}/{typ.value}").hex


class TokenStore:
    """Issues token pairs, rotates refresh tokens within their family, ends sessions."""

    def __init__(self, settings: Settings, store: redis.Redis) -> None:
        self.key = settings.jwt_signing_key
        self.access_ttl = settings.access_token_ttl_seconds
        self.refresh_ttl = settings.refresh_token_ttl_seconds
        self.refresh_leeway = settings.refresh_reuse_leeway_seconds
        self.store = store
        self._rotate = store.register_script(_ROTATE)
        self._end_sessions = store.register_script(_END_SESSIONS)

    def _pair(
        self, user_id: int, family: str, valid_after: int, now: int, jtis: tuple[str, str] | None = None, role: str | None = None
    ) -> TokenPair:
        access_jti, refresh_jti = jtis or (uuid.uuid4().hex, uuid.uuid4().hex)
        access = new_claims(TokenType.ACCESS, user_id, self.access_ttl, now, family, valid_after=valid_after, jti=access_jti, role=role)
        refresh = new_claims(TokenType.REFRESH, user_id, self.refresh_ttl, now, family, valid_after=valid_after, jti=refresh_jti, role=role)
        return TokenPair(user_id, encode_token(self.key, access), encode_token(self.key, refresh), self.access_ttl)

    def valid_after(self, user_id: int) -> int:
        """Read before a login checks the password: the new session is issued under this value."""
        value = self.store.get(valid_after_key(user_id))
        return int(value) if value is not None else 0

    def issue(self, user_id: int, valid_after: int, role: str | None = None) -> TokenPair:
        """A new login session: a new refresh token family (its tokens carry the user's role, if any).

        Revoking a role ends the user's sessions (``end_sessions``), so no token outlives it.
        """
        family, refresh_jti = uuid.uuid4().hex, uuid.uuid4().hex
        pair = self._pair(user_id, family, valid_after, int(time.time()), (uuid.uuid4().hex, refresh_jti), role)
        self.store.set(_family_key(family), refresh_jti, ex=self.refresh_ttl)
        return pair

    def rotate(self, presented: Claims) -> TokenPair:
        """Replace the presented refresh token with a new pair in the same family."""
        assert presented.fam is not None
        jtis = (_successor(presented.jti, TokenType.ACCESS), _successor(presented.jti, TokenType.REFRESH))
        keys = [_family_key(presented.fam), _rotated_key(presented.jti), valid_after_key(presented.sub), revoked_family_key(presented.fam)]
        args: list[str | int | float] = [
            presented.jti,
            jtis[1],
            self.refresh_ttl,
            int(time.time()),
            self.refresh_leeway,
            presented.vaf,
            self.access_ttl,
        ]
        outcome = self._rotate(keys=keys, args=args)
        if outcome[0] == -1:
            log.warning("user %s: refresh token reused; family %s revoked", presented.sub, presented.fam)
            raise RefreshReused("refresh token already used")
        if outcome[0] == 0:
            raise InvalidToken("the session was revoked or has expired")
        return self._pair(presented.sub, presented.fam, presented.vaf, int(outcome[1]), jtis, presented.role)

    def revoke_access(self, claims: Claims) -> None:
        remaining = claims.exp - int(time.time())
        if remaining > 0:
            self.store.set(revoked_key(claims.jti), 1, ex=remaining)

    def revoke_family(self, family: str) -> None:
        """One login session: its refresh token, and every access token issued from it."""
        with self.store.pipeline() as pipe:
            pipe.delete(_family_key(family))
            pipe.set(revoked_family_key(family), 1, ex=self.access_ttl)
            pipe.execute()

    def end_sessions(self, user_id: int) -> None:
        """Every session of the user, everywhere: tokens issued before now are refused."""
        self._end_sessions(keys=[valid_after_key(user_id)], args=[self.refresh_ttl])


class LoginLimiter:
    """Password attempts counted per account and per client address in fixed windows, counted first."""

    def __init__(self, settings: Settings, store: redis.Redis) -> None:
        self.window = settings.login_failure_window_seconds
        self.per_account = settings.login_max_failures_per_account
        self.per_address = settings.login_max_failures_per_address
        self._reserve = store.register_script(_RESERVE)
        self._refund = store.register_script(_REFUND)

    @staticmethod
    def _account_key(email: str) -> str:
        return f"auth:failures:account:{hashlib.sha256(email.strip().lower().encode()).hexdigest()}"

    @staticmethod
    def _address_key(address: str) -> str:
        return f"auth:failures:address:{address}"

    def reserve(self, email: str, address: str) -> int | None:
        """Count an attempt before the password is checked; the seconds to wait if over a limit."""
        keys = [self._account_key(email), self._address_key(address)]
        wait = int(self._reserve(keys=keys, args=[self.window, self.per_account, self.per_address]))
        return wait or None

    def succeeded(self, email: str, address: str) -> None:
        """The password was right: clear the account's count, give the address its attempt back."""
        self._refund(keys=[self._account_key(email), self._address_key(address)])


class RequestThrottle:
    """Requests per client address and action in moving windows (the ``limits`` package, in Redis)."""

    def __init__(self, settings: Settings, store: redis.Redis) -> None:
        storage = RedisStorage(settings.broker_url, connection_pool=store.connection_pool, key_prefix="auth:throttle")
        self.limiter = MovingWindowRateLimiter(storage)
        self.limits: dict[str, list[RateLimitItem]] = {
            "register": parse_many(settings.register_rate_limit),
            "login": parse_many(settings.login_rate_limit),
            "restore": parse_many(settings.restore_rate_limit),
        }

    def hit(self, action: str, address: str) -> int | None:
        """Count a request; the seconds until another is allowed if over a limit."""
        for limit in self.limits[action]:
            if not self.limiter.hit(limit, action, address):
                reset_at = self.limiter.get_window_stats(limit, action, address).reset_time
                return max(1, math.ceil(reset_at - time.time()))
        return None
