"""The status stream's vocabulary: everything that changes the application state.

Each event carries `at`, the scheduler time in seconds, so the state reducer stays pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.errors import FailureKind
from pipeline.outbox import SourceCounts


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusEvent:
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Started(StatusEvent):
    session_id: str
    attempt_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Connecting(StatusEvent):
    """A socket is being opened (the attempt number comes from the last `Reconnecting`)."""

    connection_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Connected(StatusEvent):
    """The socket is open and the backend said `connected`; not yet streaming."""

    connection_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Streaming(StatusEvent):
    """`start` accepted. `resumed` is None on a first connection, else whether the
    backend kept the session (v0.3) — False means a session reset or a v0.2 backend."""

    connection_id: str
    protocol: str
    resumed: bool | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconnecting(StatusEvent):
    attempt: int
    delay: float
    cause: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendStatus(StatusEvent):
    """A backend status while streaming (`warning`, `backpressure`, ... or informational)."""

    state: str
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendDropped(StatusEvent):
    """The backend says it dropped `total` frames of `source` in its current session
    ("" when it names no source): audio known not to have been transcribed."""

    source: str
    total: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioCounts(StatusEvent):
    counts: Mapping[str, SourceCounts] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioLevel(StatusEvent):
    source: str
    rms_dbfs: float
    peak_dbfs: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Transcribed(StatusEvent):
    """A final segment joined the transcript (text kept short for the state)."""

    source: str
    text: str
    partial: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Finalizing(StatusEvent):
    """Audio has ended; `stop` is on its way and the final summary is awaited."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Stopped(StatusEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Failed(StatusEvent):
    reason: str
    kind: FailureKind
