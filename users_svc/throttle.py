"""Limits on password attempts and on requests per client address, counted in Redis.

Keys live on the broker's Redis under ``auth:``, beside the token state (``auth.py``):

    auth:failures:account:<sha256>  attempts at an account's password (hashed: no addresses in key names)
    auth:failures:address:<ip>      failed password attempts from a client address
    auth:throttle/...               requests per client address (the ``limits`` package's moving windows)
"""

import hashlib
import math
import time

import redis
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from .config import Settings

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
