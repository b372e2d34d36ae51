"""Frames a backend says it dropped: v0.2 `backpressure` statuses (`dropped_frames`) and
`metrics` (`dropped_total`, per source). They reach the state and the report as their own
figure — known not to have been transcribed — beside the client's own accounting.

Both are running totals of one backend session: a v0.3 resume keeps counting, a new
backend session (a first connection, a session reset, every v0.2 connection) starts at 0.
`BackendDrops` folds them: the largest total seen per source in the current backend
session, plus the sums of the earlier ones. A `backpressure` status names no source: its
figure counts for the session as a whole, and the larger reading wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pipeline.protocol import Metrics, Status
from pipeline.status import BackendDropped

ANY_SOURCE = ""  # a figure that names no source
_EMPTY: Mapping[str, int] = MappingProxyType({})


def reported_drop(event: object, at: float) -> BackendDropped | None:
    """The drop figure an event carries, if any."""
    if isinstance(event, Metrics) and event.dropped_total:
        return BackendDropped(at=at, source=event.source, total=event.dropped_total)
    if isinstance(event, Status) and event.dropped_frames:
        return BackendDropped(at=at, source=ANY_SOURCE, total=event.dropped_frames)
    return None


def _session_total(current: Mapping[str, int]) -> int:
    named = sum(total for source, total in current.items() if source != ANY_SOURCE)
    return max(named, current.get(ANY_SOURCE, 0))


@dataclass(frozen=True, slots=True)
class BackendDrops:
    earlier: int = 0  # every ended backend session
    current: Mapping[str, int] = field(default_factory=lambda: _EMPTY)

    def reported(self, source: str, total: int) -> BackendDrops:
        if total <= self.current.get(source, 0):
            return self
        return BackendDrops(self.earlier, MappingProxyType({**self.current, source: total}))

    def new_backend_session(self) -> BackendDrops:
        if not self.current:
            return self
        return BackendDrops(self.earlier + _session_total(self.current))

    @property
    def total(self) -> int:
        return self.earlier + _session_total(self.current)
