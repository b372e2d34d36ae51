"""The session as an async iterator of typed events — the front door for Python users.

    async with Session(config, audio) as session:
        async for event in session:
            match event:
                case AsrFinal(text=text): print(text)
                case PhaseChanged(phase=phase, attempt=attempt, delay=delay): ...
    session.report.raise_for_failure()

The events: `AsrFinal` and `AsrPartial` (transcripts), `PhaseChanged` (with the attempt,
delay and cause of a pending reconnection), `BackendStatus`, `Missed` (events a slow
consumer did not get) and, last, `Ended` with the report. They wait in a bounded queue
that never blocks the session: when it is full the oldest event is dropped and the next
one delivered is a `Missed` saying how many were. Finals are never lost to the report
(`report.transcript`), only to a consumer that does not keep up.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias, cast

import reactivex
from reactivex import Observable
from reactivex import operators as ops

from pipeline.protocol import AsrFinal, AsrPartial, ServerEvent
from pipeline.report import SessionReport
from pipeline.state import AppState, Phase
from pipeline.status import BackendStatus, StatusEvent

if TYPE_CHECKING:
    from pipeline.session import Session

MAX_EVENTS = 256  # events held for a consumer before the oldest are dropped (and counted)


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseChanged:
    """The session moved to `phase`. While reconnecting: `attempt`, `delay` (seconds from
    `at`, on the session's clock) and the `cause` of the last failure."""

    at: float
    phase: Phase
    attempt: int = 0
    delay: float | None = None
    cause: str | None = None
    protocol: str | None = None
    resumed: str | None = None  # after a reconnect: "resumed" or "session reset"

    @classmethod
    def of(cls, state: AppState) -> PhaseChanged:
        return cls(
            at=state.updated_at,
            phase=state.phase,
            attempt=state.attempt,
            delay=state.retry_delay,
            cause=state.cause if state.phase is Phase.RECONNECTING else None,
            protocol=state.protocol,
            resumed=state.last_resume,
        )


@dataclass(frozen=True, slots=True)
class Missed:
    """`count` events were dropped because the consumer fell behind."""

    count: int


@dataclass(frozen=True, slots=True)
class Ended:
    """The last event: the session is over and this is its report."""

    report: SessionReport


SessionEvent: TypeAlias = AsrFinal | AsrPartial | PhaseChanged | BackendStatus | Missed | Ended


def _begun(state: AppState) -> bool:
    return state.phase is not Phase.IDLE


def _phase_key(state: AppState) -> tuple[object, ...]:
    return (state.phase, state.attempt, state.retry_at)


def _is_backend_status(event: StatusEvent) -> bool:
    return isinstance(event, BackendStatus)


def _is_transcript(event: ServerEvent) -> bool:
    return isinstance(event, AsrFinal | AsrPartial)


def _as_event(event: object) -> SessionEvent:
    return cast(SessionEvent, event)  # what the filter before it let through


def session_events(session: Session) -> Observable[SessionEvent]:
    """A session's events as the front door sees them, all but `Missed` and `Ended`
    (hot: subscribe before the session runs)."""
    phases: Observable[SessionEvent] = session.state.pipe(
        ops.filter(_begun), ops.distinct_until_changed(_phase_key), ops.map(PhaseChanged.of)
    )
    statuses = session.status.pipe(ops.filter(_is_backend_status), ops.map(_as_event))
    transcripts = session.events.pipe(ops.filter(_is_transcript), ops.map(_as_event))
    return reactivex.merge(phases, statuses, transcripts)


class EventQueue:
    """A bounded, never-blocking queue of events; the end is kept apart and always arrives."""

    def __init__(self, maxsize: int = MAX_EVENTS) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._items: deque[SessionEvent] = deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self._end: Ended | BaseException | None = None
        self.missed = 0  # dropped, not yet said
        self.missed_total = 0

    def put(self, event: SessionEvent) -> None:
        if self._end is not None:
            return
        if len(self._items) >= self._maxsize:
            self._items.popleft()
            self.missed += 1
            self.missed_total += 1
        self._items.append(event)
        self._ready.set()

    def close(self, end: Ended | BaseException) -> None:
        if self._end is None:
            self._end = end
            self._ready.set()

    async def get(self) -> SessionEvent:
        """The next event; `StopAsyncIteration` after `Ended` (or the run's own error)."""
        while True:
            if self.missed:
                count, self.missed = self.missed, 0
                return Missed(count)
            if self._items:
                return self._items.popleft()
            end = self._end
            if isinstance(end, Ended):
                self._end = StopAsyncIteration()
                return end
            if end is not None:
                raise end
            self._ready.clear()
            await self._ready.wait()


class EventFeed:
    """Runs a session in a task and feeds its events into an `EventQueue`."""

    def __init__(self, session: Session, maxsize: int = MAX_EVENTS) -> None:
        self.session = session
        self.queue = EventQueue(maxsize)
        self.report: SessionReport | None = None
        self._subscription = session_events(session).subscribe(self.queue.put)
        self.task = asyncio.get_running_loop().create_task(session.run())
        self.task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[SessionReport]) -> None:
        self._subscription.dispose()
        if task.cancelled():
            self.queue.close(asyncio.CancelledError())
        elif (error := task.exception()) is not None:
            self.queue.close(error)
        else:
            self.report = task.result()
            self.queue.close(Ended(self.report))

    async def events(self) -> AsyncIterator[SessionEvent]:
        while True:
            try:
                yield await self.queue.get()
            except StopAsyncIteration:
                return

    async def close(self, timeout: float | None = None) -> SessionReport:
        """Stop the session if it still runs (stop sent, summary awaited up to `timeout`,
        default the config's `stop_timeout`) and return its report.

        Also when the calling task is being cancelled (Ctrl-C under `asyncio.run`): the
        cancellation is raised again by the caller once the report is built.
        """
        if not self.task.done():
            await self.session.stop(timeout)
        return await self.task
