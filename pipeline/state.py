"""The application state, derived by scanning status events — never mutated in place.

state = status.pipe(ops.scan(reduce, AppState()))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

from pipeline.dropped import BackendDrops
from pipeline.errors import FailureKind
from pipeline.outbox import SourceCounts
from pipeline.status import (
    AudioCounts,
    AudioLevel,
    BackendDropped,
    BackendStatus,
    Connected,
    Connecting,
    Failed,
    Finalizing,
    Reconnecting,
    Started,
    StatusEvent,
    Stopped,
    Streaming,
    Transcribed,
)

_EMPTY: Mapping[str, SourceCounts] = MappingProxyType({})
BUSY_STATES = frozenset({"warning", "backpressure", "buffering", "overloaded"})
NO_RECOGNIZER = "no_asr_provider"  # the backend streams and records, without transcription


class Phase(StrEnum):
    IDLE = "idle"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    FINALIZING = "finalizing"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Level:
    rms_dbfs: float
    peak_dbfs: float


@dataclass(frozen=True)
class AppState:
    phase: Phase = Phase.IDLE
    session_id: str | None = None
    attempt_id: str | None = None
    connection_id: str | None = None
    attempt: int = 0
    retry_delay: float | None = None
    retry_at: float | None = None
    cause: str | None = None
    reconnects: int = 0
    resumes: int = 0
    resets: int = 0
    last_resume: str | None = None  # "resumed" or "session reset", after a reconnect
    protocol: str | None = None
    last_error: str | None = None
    failure: str | None = None
    failure_kind: FailureKind | None = None
    started_at: float | None = None
    ended_at: float | None = None
    streaming_since: float | None = None
    connected_time: float = 0.0
    down_since: float | None = None
    downtime: float = 0.0
    backend_state: str | None = None
    backend_message: str = ""
    untranscribed: str = ""  # why the backend records some audio without transcribing it
    audio: Mapping[str, SourceCounts] = field(default_factory=lambda: _EMPTY)
    backend_drops: BackendDrops = field(default_factory=BackendDrops)
    levels: Mapping[str, Level] = field(default_factory=dict)
    stopping: bool = False
    finals: int = 0
    last_text: str = ""
    partial_text: str = ""
    updated_at: float = 0.0

    @property
    def backend_busy(self) -> bool:
        return self.backend_state in BUSY_STATES

    def retry_in(self, now: float) -> float | None:
        """Seconds until the scheduled reconnection (for a countdown)."""
        return None if self.retry_at is None else max(0.0, self.retry_at - now)

    def totals(self) -> SourceCounts:
        return sum(self.audio.values(), SourceCounts())

    @property
    def backend_dropped(self) -> int:
        """Frames the backend said it dropped (known not to have been transcribed)."""
        return self.backend_drops.total


# Levels and counts arrive several times a second per source of every session: their copy
# of the state skips `dataclasses.replace` (a lookup by name per field and the frozen
# `__init__`) and copies the instance's dict in one call. `AppState` has a dict, not slots,
# for this: the slots set one by one took 17 us a copy in a session, 2.3% of its CPU.


def with_meters(
    state: AppState, audio: Mapping[str, SourceCounts], levels: Mapping[str, Level], at: float
) -> AppState:
    """`replace(state, audio=audio, levels=levels, updated_at=at)`, cheaper."""
    new = object.__new__(AppState)
    values = new.__dict__
    values.update(state.__dict__)
    values["audio"] = audio
    values["levels"] = levels
    values["updated_at"] = at
    return new


def _leave_streaming(state: AppState, at: float) -> AppState:
    if state.streaming_since is None:
        return state
    return replace(
        state,
        streaming_since=None,
        connected_time=state.connected_time + (at - state.streaming_since),
    )


def _end(state: AppState, at: float) -> AppState:
    state = _leave_streaming(state, at)
    if state.down_since is not None:
        state = replace(state, downtime=state.downtime + (at - state.down_since), down_since=None)
    return replace(state, ended_at=at, retry_at=None, retry_delay=None)


def _connecting(state: AppState, cid: str) -> AppState:
    phase: Phase = (
        Phase.CONNECTING
        if state.phase in (Phase.IDLE, Phase.RECONNECTING, Phase.CONNECTING)
        else state.phase
    )
    return replace(state, phase=phase, connection_id=cid, retry_at=None)


def _streaming(state: AppState, event: Streaming) -> AppState:
    """Back up: an outage ends (counted as a reconnect, resumed or reset), retries reset."""
    at, resumed = event.at, event.resumed
    reconnected = state.down_since is not None
    reconnects = state.reconnects
    if state.down_since is not None:
        state = replace(state, downtime=state.downtime + (at - state.down_since), down_since=None)
        reconnects += 1
    last_resume = state.last_resume
    resumes, resets = state.resumes, state.resets
    if reconnected and resumed is not None:
        last_resume = "resumed" if resumed else "session reset"
        resumes += bool(resumed)
        resets += not resumed
    phase = Phase.FINALIZING if state.stopping else Phase.STREAMING
    drops = state.backend_drops if resumed else state.backend_drops.new_backend_session()
    return replace(
        state,
        backend_drops=drops,
        phase=phase,
        connection_id=event.connection_id,
        protocol=event.protocol,
        attempt=0,
        reconnects=reconnects,
        retry_at=None,
        retry_delay=None,
        streaming_since=at,
        last_resume=last_resume,
        resumes=resumes,
        resets=resets,
        backend_state=None,
        backend_message="",
    )


def _reconnecting(state: AppState, event: Reconnecting) -> AppState:
    """Down: an outage starts when a streaming connection is lost, and a retry is due."""
    at = event.at
    was_up = state.streaming_since is not None
    state = _leave_streaming(state, at)
    down_since = state.down_since
    if down_since is None and was_up:
        down_since = at
    return replace(
        state,
        phase=Phase.RECONNECTING,
        attempt=event.attempt,
        retry_delay=event.delay,
        retry_at=at + event.delay,
        cause=event.cause,
        last_error=event.cause,
        down_since=down_since,
    )


def _backend_status(state: AppState, backend_state: str, message: str) -> AppState:
    state = replace(state, backend_state=backend_state, backend_message=message)
    if backend_state == NO_RECOGNIZER:
        state = replace(state, untranscribed=message or "no speech recogniser")
    return state


def reduce(state: AppState, event: StatusEvent) -> AppState:
    """The next state. Pure: the same state and event always give the same result.

    One case per event type; the longer ones are reducers of their own above."""
    at = event.at
    # the frequent events (per source several times a second) first, in one copy
    if isinstance(event, AudioCounts):
        audio = MappingProxyType({**state.audio, **event.counts})
        return with_meters(state, audio, state.levels, at)
    if isinstance(event, AudioLevel):
        levels = {**state.levels, event.source: Level(event.rms_dbfs, event.peak_dbfs)}
        return with_meters(state, state.audio, levels, at)
    state = replace(state, updated_at=at)
    match event:
        case Started(session_id=sid, attempt_id=aid):
            return replace(
                state, phase=Phase.CONNECTING, session_id=sid, attempt_id=aid, started_at=at
            )
        case Connecting(connection_id=cid):
            return _connecting(state, cid)
        case Connected(connection_id=cid):
            return replace(state, connection_id=cid)
        case Streaming():
            return _streaming(state, event)
        case Reconnecting():
            return _reconnecting(state, event)
        case BackendStatus(state=backend_state, message=message):
            return _backend_status(state, backend_state, message)
        case BackendDropped(source=source, total=total):
            return replace(state, backend_drops=state.backend_drops.reported(source, total))
        case Transcribed(text=text, partial=True):
            return replace(state, partial_text=text)
        case Transcribed(text=text):
            return replace(state, finals=state.finals + 1, last_text=text, partial_text="")
        case Finalizing():
            waiting = state.phase is Phase.RECONNECTING  # stays visible until reconnected
            return replace(
                state, phase=Phase.RECONNECTING if waiting else Phase.FINALIZING, stopping=True
            )
        case Stopped():
            return replace(_end(state, at), phase=Phase.STOPPED)
        case Failed(reason=reason, kind=kind):
            return replace(
                _end(state, at),
                phase=Phase.FAILED,
                failure=reason,
                failure_kind=kind,
                last_error=reason,
            )
    return state
