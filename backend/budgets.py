"""What one connection may make the backend do: a message rate, and a budget of invalid
messages. Pure: the caller passes the time (see `backend/rate_limit.py`).

Over the message rate, reading slows (the connection waits what `pace` says) and the
client is told now and then; past the invalid-message budget, the connection is cut off.
"""

from __future__ import annotations

from backend.config import BackendConfig
from backend.rate_limit import TokenBucket

TOO_MANY_INVALID = "Too many invalid messages (over {rate:g}/s): closing"
SLOWED = "Over {rate:g} messages/s: reading slowed"
SLOWED_NOTICE_EVERY = 5.0  # seconds between two "reading slowed" warnings


class MessageBudgets:
    """The rate and invalid-message budgets of one connection."""

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.rate = TokenBucket(config.max_message_rate, config.message_burst)
        self.invalid = TokenBucket(config.max_invalid_rate, config.invalid_burst)
        self.cut_off = False  # the invalid-message budget is spent: the connection closes
        self.slowed_notice_at: float | None = None

    def pace(self, now: float) -> tuple[float, str | None]:
        """Take one message at `now`: the seconds to wait before reading on, and the
        warning to send the client (at most every SLOWED_NOTICE_EVERY seconds)."""
        wait = self.rate.take(now)
        if wait <= 0:
            return 0.0, None
        if self.slowed_notice_at is None or now - self.slowed_notice_at >= SLOWED_NOTICE_EVERY:
            self.slowed_notice_at = now
            return wait, SLOWED.format(rate=self.config.max_message_rate)
        return wait, None

    def spend_invalid(self, now: float) -> bool:
        """Count an invalid message at `now`; True when it is over the budget (cut off)."""
        if self.invalid.take(now) > 0:
            self.cut_off = True
            return True
        return False

    @property
    def cut_off_message(self) -> str:
        return TOO_MANY_INVALID.format(rate=self.config.max_invalid_rate)
