"""A token bucket: how the backend bounds what one connection may make it do.

Pure: the caller passes the time, so tests run it on a virtual clock.

    bucket = TokenBucket(rate=1000, burst=2000)
    wait = bucket.take(loop.time())   # 0.0: go on; > 0: the bucket is in debt, wait that long
"""

from __future__ import annotations


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; starts full.

    Taking from an empty bucket runs it into debt, and :meth:`take` says how long the
    taker must wait for the debt to be paid: a caller that waits that long is held to
    `rate` exactly, whatever it tries.
    """

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"need rate > 0 and burst >= 1, got {rate} and {burst}")
        self.rate = float(rate)
        self.burst = float(burst)
        self._tokens = self.burst
        self._stamp: float | None = None

    def _refill(self, now: float) -> None:
        if self._stamp is not None and now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        if self._stamp is None or now > self._stamp:
            self._stamp = now

    def available(self, now: float) -> float:
        """Tokens in the bucket at `now` (negative: debt)."""
        self._refill(now)
        return self._tokens

    def take(self, now: float) -> float:
        """Take one token at `now`; the seconds to wait before acting on it (0.0: at once)."""
        self._refill(now)
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
