"""Ping barriers in flight against a v0.2 backend, and when their silence means a stall.

A v0.2 backend sends no acks: a PONG for a PING written after frame n proves it read
frame n. Frames written after the last answered barrier are at risk if the backend has
frozen; the heartbeat notices only after seconds. A barrier unanswered for longer than
`max(floor, factor x the measured round trip)` is a stall: the writer stops taking
frames, which then go out on the next connection instead of into a dead socket.

Pure: times are passed in, so the rule is tested without a clock or a socket.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from loguru import logger

STALL_FLOOR_S = 1.0
STALL_FACTOR = 4.0
_SMOOTHING = 0.125  # weight of a new round-trip sample (as TCP's SRTT, RFC 6298)


@dataclass
class BarrierWatch:
    floor: float = STALL_FLOOR_S
    factor: float = STALL_FACTOR
    rtt: float | None = None  # smoothed round trip of answered barriers, seconds
    _sent: dict[int, float] = field(default_factory=dict)  # barrier number -> sent at

    def sent(self, number: int, now: float) -> None:
        self._sent[number] = now

    def answered(self, number: int, now: float) -> list[int]:
        """A PONG for barrier `number`: it and every earlier one are answered (returned)."""
        done = [key for key in self._sent if key <= number]
        if number in self._sent:
            sample = now - self._sent[number]
            self.rtt = sample if self.rtt is None else self.rtt + _SMOOTHING * (sample - self.rtt)
        for key in done:
            del self._sent[key]
        return done

    @property
    def bound(self) -> float:
        """How long a barrier may stay unanswered before the link counts as stalled."""
        return max(self.floor, self.factor * (self.rtt or 0.0))

    @property
    def outstanding(self) -> int:
        return len(self._sent)

    def stalled_since(self) -> float | None:
        """When the oldest unanswered barrier will have waited `bound` (None: none out)."""
        oldest = next(iter(self._sent.values()), None)
        return None if oldest is None else oldest + self.bound

    def stalled(self, now: float) -> bool:
        since = self.stalled_since()
        return since is not None and now >= since


class Barriers:
    """The barriers of one connection: what each confirms, and whether the link stalled.

    `marks()` gives, when a barrier is sent, the last frame written per source; a PONG
    for barrier n confirms (through `confirm`) the marks of n and of every earlier one.
    """

    def __init__(
        self,
        marks: Callable[[], Mapping[str, int]],
        confirm: Callable[[str, int], None],
        log: Callable[[str, float], None] = logger.warning,
    ) -> None:
        self._marks, self._confirm, self._log = marks, confirm, log
        self._pending: dict[int, Mapping[str, int]] = {}  # barrier -> marks before it
        self.count = 0  # barriers sent
        self.since = 0  # frames written since the last barrier
        self.watch = BarrierWatch()
        self.stall_logged = False

    def send(self, now: float) -> bytes:
        """A new barrier after the frames written so far: the PING payload to write."""
        self.since = 0
        self.count += 1
        self._pending[self.count] = self._marks()
        self.watch.sent(self.count, now)
        return struct.pack(">Q", self.count)

    def answered(self, payload: bytes, now: float) -> bool:
        """A PONG: confirm what it and every earlier barrier cover. False: not a barrier's."""
        if len(payload) != 8:
            return False
        (number,) = struct.unpack(">Q", payload)
        self.watch.answered(number, now)
        for key in [k for k in self._pending if k <= number]:
            for source, seq in self._pending.pop(key).items():
                self._confirm(source, seq)
        return True

    def stalled(self, now: float) -> bool:
        """Barriers unanswered past the bound. Logged once per stall."""
        stalled = self.watch.stalled(now)
        if stalled and not self.stall_logged:
            self._log(
                "ping barriers unanswered for {:.1f} s: holding frames for the next connection",
                self.watch.bound,
            )
        self.stall_logged = stalled
        return stalled
