"""Throttling ``POST /v1/emails/send/``: per client address and per recipient, counted in Redis.

The ``limits`` library keeps a moving window per key on the broker's Redis (keys prefixed
``throttle:``); each hit is counted atomically, so parallel requests cannot overshoot a limit.
"""

import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter


def parse_rates(rates: str) -> list[RateLimitItem]:
    """``"20/minute;200/hour"`` in the limits notation; empty for no limit."""
    return parse_many(rates) if rates.strip() else []


class SendThrottle:
    def __init__(self, redis_url: str, per_address: str, per_recipient: str) -> None:
        self._storage = RedisStorage(redis_url, key_prefix="throttle", socket_connect_timeout=2, socket_timeout=2)
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._limits = {"emails-send-address": parse_rates(per_address), "emails-send-recipient": parse_rates(per_recipient)}

    def retry_after(self, address: str, user_id: int) -> int | None:
        """Count one send; seconds to wait if a limit is reached (the send is refused), else None."""
        for (scope, rates), key in zip(self._limits.items(), (address, str(user_id)), strict=True):
            for rate in rates:
                if not self._limiter.hit(rate, scope, key):
                    reset_at = self._limiter.get_window_stats(rate, scope, key).reset_time
                    return max(1, math.ceil(reset_at - time.time()))
        return None

    def close(self) -> None:
        self._storage.storage.close()
