"""Recogniser time -> stream time, across audio the recogniser never got.

A recogniser counts time in the audio it was fed. When the backend drops frames (its
queue is full) or the client skipped some (a `seq` gap), the source's own timeline runs
on without the recogniser seeing it; hypotheses are mapped back through the skips so
`t0`/`t1` stay seconds from the start of that source's audio.
"""

from __future__ import annotations

import bisect

MAX_MARKS = 256  # skips remembered inside one open utterance; older ones are folded in


class Timeline:
    """Skips of stream audio, keyed by the recogniser time at which each happened."""

    def __init__(self) -> None:
        self._base = 0.0  # offset of every time not after the first mark
        self._at: list[float] = []  # recogniser times of skips, ascending
        self._offset: list[float] = []  # total offset from that skip on

    @property
    def skipped(self) -> float:
        """Seconds of stream audio the recogniser did not get."""
        return self._offset[-1] if self._offset else self._base

    def skip(self, at: float, seconds: float) -> None:
        """`seconds` of stream audio are missing at recogniser time `at` (non-decreasing)."""
        if seconds <= 0:
            return
        total = self.skipped + seconds
        if self._at and self._at[-1] >= at:
            self._offset[-1] = total  # more of the same gap
            return
        self._at.append(at)
        self._offset.append(total)
        if len(self._at) > MAX_MARKS:
            self.forget_before(self._at[0])

    def to_stream(self, t: float) -> float:
        """Stream time of recogniser time `t` (a skip at `at` moves every `t >= at`)."""
        index = bisect.bisect_right(self._at, t)
        return t + (self._offset[index - 1] if index else self._base)

    def forget_before(self, t: float) -> None:
        """No hypothesis will refer to a time before `t`: fold the skips up to it."""
        index = bisect.bisect_right(self._at, t)
        if index:
            self._base = self._offset[index - 1]
            del self._at[:index]
            del self._offset[:index]
