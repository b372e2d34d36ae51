"""A session: audio in, the retried connection, and the state derived from status events.

    async with Session(SessionConfig(url=...), wav_file("talk.wav")) as session:
        async for event in session:         # typed events (pipeline.events), then the end
            print(event)
    session.report.raise_for_failure()

    session = Session(SessionConfig(url=...), wav_file("talk.wav"))
    session.state.subscribe(print)          # AppState for a display (pipeline.display)
    report = await session.run()            # until the audio ends and the backend confirms

Audio goes into the outbox (never blocking capture); the connection observable, wrapped
in `retry_with_backoff`, drains it over whichever socket is alive; `status` carries every
change and `state = status.pipe(ops.scan(reduce, AppState()))`.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import AsyncIterator, Callable, Hashable
from types import TracebackType

import reactivex
from loguru import logger
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable
from reactivex.subject import BehaviorSubject, Subject

from operators.backoff import Decision, GaveUp, Retry, retry_with_backoff
from operators.clock import seconds_of
from operators.coalesce import Coalescer
from operators.display_rate import display_rate
from operators.distinct_recent import RecentKeys, distinct_recent
from operators.isolate import isolate
from operators.level import Level, LevelMeter
from pipeline import errors
from pipeline.audio import AudioFrame
from pipeline.config import SessionConfig
from pipeline.connection import LinkEvent, LinkMemo, connect
from pipeline.display import STATE_EVERY_S, changed_headline, shows_the_same
from pipeline.dropped import reported_drop
from pipeline.events import EventFeed, SessionEvent
from pipeline.flow import Demand, demand_scope
from pipeline.ids import SessionIds
from pipeline.loop_scheduler import TIMER_GRID_S, LoopScheduler
from pipeline.outbox import Outbox
from pipeline.protocol import AsrFinal, AsrPartial, FinalSummary, Segment, ServerEvent, Status
from pipeline.report import SessionReport, build_report
from pipeline.state import AppState, Phase, reduce
from pipeline.status import (
    AudioCounts,
    AudioLevel,
    BackendStatus,
    Failed,
    Finalizing,
    Reconnecting,
    Started,
    StatusEvent,
    Stopped,
    Streaming,
    Transcribed,
)

FLOW_WINDOW_S = SessionConfig.flow_window  # the default flow window (seconds per source)
# Audio counts reach the state this often while they change (and at once after a quiet
# spell, and at the end): a real-time stream changes the outbox several times per frame,
# and a state update per change cost more CPU than sending the frame. Twice a second, on
# every other instant of the level windows: a count is read, not watched like a meter, and
# each update is a copy of the state in every session.
COUNTS_EVERY_S = 2 * STATE_EVERY_S
_LINK_STATES = frozenset({"connected", "streaming", "error"})


def failure_reason(error: BaseException) -> str:
    if isinstance(error, GaveUp):
        return f"gave up reconnecting after {error.attempts} attempts: {error.cause}"
    return str(error) or type(error).__name__


def final_key(segment: AsrFinal) -> tuple[str, float, float, str]:
    """Two finals with this key are the same segment (e.g. replayed after a resume)."""
    return (segment.source, round(segment.t0, 2), round(segment.t1, 2), segment.text)


def _final_key(item: LinkEvent | Retry) -> Hashable | None:
    return final_key(item) if isinstance(item, AsrFinal) else None


def link_status(item: LinkEvent | Retry, at: float) -> list[StatusEvent]:
    """What an item of the retried link changes in the state, as status events (pure)."""
    statuses: list[StatusEvent] = []
    dropped = reported_drop(item, at)
    if dropped is not None:
        statuses.append(dropped)
    match item:
        case Retry(attempt=attempt, delay=delay, cause=cause):
            cause_text = failure_reason(cause)
            statuses.append(Reconnecting(at=at, attempt=attempt, delay=delay, cause=cause_text))
        case StatusEvent():
            statuses.append(item)
        case AsrFinal() | AsrPartial():
            partial = isinstance(item, AsrPartial)
            statuses.append(Transcribed(at=at, source=item.source, text=item.text, partial=partial))
        case Status(state=state, message=message) if state not in _LINK_STATES:
            statuses.append(BackendStatus(at=at, state=state, message=message))
    return statuses


def audio_level(level: Level) -> AudioLevel:
    return AudioLevel(
        at=level.at, source=level.source, rms_dbfs=level.rms_dbfs, peak_dbfs=level.peak_dbfs
    )


def outbox_changes(outbox: Outbox) -> Observable[None]:
    """Each change of the outbox (a frame pushed, taken, confirmed...), as a hot observable."""

    def subscribe(
        observer: abc.ObserverBase[None], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        return Disposable(outbox.listen(lambda: observer.on_next(None)))

    return reactivex.create(subscribe)


class Session:
    """Streams `audio` to the backend of `config` and survives faults. Runs once.

    Long (over 200 lines) because it is the public surface — what users watch, the
    `async with`/`async for` front door, `run`, `stop`, `retry_now` — each member short;
    the coordination is in operators and the pure functions above.
    """

    def __init__(
        self,
        config: SessionConfig,
        audio: Observable[AudioFrame],
        *,
        scheduler: abc.SchedulerBase | None = None,
        ids: SessionIds | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.ids = ids or SessionIds.new()
        self._audio = audio
        self._scheduler = scheduler
        self._rng = rng
        self._status: Subject[StatusEvent] = Subject()
        self._events: Subject[ServerEvent] = Subject()
        self._state = BehaviorSubject(AppState())
        self._status.pipe(ops.scan(reduce, AppState())).subscribe(self._state)
        self.log = logger.bind(session_id=self.ids.session_id, attempt_id=self.ids.attempt_id)
        self._transcript: list[AsrFinal] = []
        self._seen = RecentKeys()  # bounded: a flood of distinct finals cannot grow it
        self._summary: FinalSummary | None = None
        self._stop_requested = False
        self._done: asyncio.Future[StatusEvent] | None = None
        self._outbox = Outbox(config.max_frames, config.window_frames)
        self._clock: Callable[[], float] = lambda: 0.0
        self._audio_sub: abc.DisposableBase | None = None
        self._meter: LevelMeter | None = None
        self._audio_failure: Exception | None = None
        self._error: Exception | None = None  # why the session failed, for raise_for_failure
        self._skip_delay: Subject[None] = Subject()
        self._running_scheduler: abc.SchedulerBase | None = None
        self._feed: EventFeed | None = None
        self._acked = 0  # frames confirmed so far, and when that last grew
        self._progress_at = 0.0
        self._memo: LinkMemo | None = None  # what one connection hands the next, once running

    # -- what users watch -----------------------------------------------------------

    # A subscriber that raises is detached and its error logged; the session goes on.

    @property
    def status(self) -> Observable[StatusEvent]:
        """Every change, as it happens (hot: subscribe before `run`)."""
        return self._status.pipe(isolate(self._subscriber_failed))

    @property
    def state(self) -> Observable[AppState]:
        """`status.pipe(ops.scan(reduce, AppState()))` paced for a display; late subscribers
        get the latest. A change of phase, retry, backend status or transcript passes at
        once; counts and levels at most every `STATE_EVERY_S` (0.25 s; the counts change
        every `COUNTS_EVERY_S`, 0.5 s); `current` is exact.
        """
        paced: Callable[[Observable[AppState]], Observable[AppState]] = display_rate(
            STATE_EVERY_S,
            urgent=changed_headline,
            same=shows_the_same,
            scheduler=self._scheduler_now,
        )
        return self._state.pipe(paced, isolate(self._subscriber_failed))

    def _scheduler_now(self) -> abc.SchedulerBase:
        return self._running_scheduler or LoopScheduler(asyncio.get_running_loop())

    def now(self) -> float:
        """The session's clock in seconds: the time base of `at`, `retry_at` and `delay`."""
        return self._clock()

    def retry_in(self) -> float | None:
        """Seconds until the pending reconnection attempt (a countdown), else None."""
        return self.current.retry_in(self._clock())

    def retry_now(self) -> bool:
        """Skip the pending backoff delay and reconnect at once; the attempt counts as
        usual. Returns whether a reconnection was pending (otherwise nothing happens)."""
        pending = self.current.phase is Phase.RECONNECTING and self.current.retry_at is not None
        self._skip_delay.on_next(None)
        return pending

    # -- the front door: async with / async for -------------------------------------

    async def __aenter__(self) -> Session:
        """Starts the session; leaving the block stops it (see `pipeline.events`)."""
        self._feed = EventFeed(self)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._feed is not None:
            await self._feed.close()

    def __aiter__(self) -> AsyncIterator[SessionEvent]:
        if self._feed is None:
            raise RuntimeError("iterate a session inside `async with session:`")
        return self._feed.events()

    @property
    def report(self) -> SessionReport:
        """The report of a session run with `async with` (after the block)."""
        if self._feed is None or self._feed.report is None:
            raise RuntimeError("the session has not ended (or was not run with `async with`)")
        return self._feed.report

    @property
    def events(self) -> Observable[ServerEvent]:
        """The backend's events: timestamps on the session timeline, finals deduplicated."""
        return self._events.pipe(isolate(self._subscriber_failed))

    def _subscriber_failed(self, error: Exception) -> None:
        self.log.opt(exception=error).error("a subscriber raised and was detached: {}", error)

    @property
    def current(self) -> AppState:
        return self._state.value

    @property
    def transcript(self) -> tuple[AsrFinal, ...]:
        return tuple(self._transcript)

    @property
    def outbox(self) -> Outbox:
        return self._outbox

    # -- running --------------------------------------------------------------------

    async def run(self) -> SessionReport:
        """Stream until the audio ends and the backend sends its final summary (or failure)."""
        scheduler, memo, done = self._begin()
        # a waiting source (a file) may run ahead of confirmation by the flow window
        window = self.config.window_frames
        demand = Demand(lambda: self._outbox.held < window, outbox_changes(self._outbox))
        watching = self._watch_outbox(scheduler)  # outbox -> coalesce -> counts
        linked = self._link(memo, scheduler)  # connect -> retry -> distinct finals -> status
        capturing = self._capture(demand, scheduler)  # audio -> outbox, audio -> levels
        try:
            end = await asyncio.shield(done)
        finally:
            capturing.dispose()
            linked.dispose()
            if memo.tasks:  # the sockets close
                await asyncio.gather(*memo.tasks, return_exceptions=True)
            watching.dispose()
            self._outbox.abandon()
            self._flush_counts()
        return self._end(end)

    def _begin(self) -> tuple[abc.SchedulerBase, LinkMemo, asyncio.Future[StatusEvent]]:
        if self._done is not None:
            raise RuntimeError("a Session runs once; create a new one")
        loop = asyncio.get_running_loop()
        scheduler = self._scheduler or LoopScheduler(loop)
        self._running_scheduler = scheduler
        self._clock = seconds_of(scheduler)
        self._done = loop.create_future()
        ids = self.ids
        self._emit(Started(at=self._clock(), session_id=ids.session_id, attempt_id=ids.attempt_id))
        self.log.info("session started, streaming to {}", self.config.url)
        if self.config.tls_warning is not None:
            self.log.warning(self.config.tls_warning)
        self._memo = LinkMemo(token=self.config.secret)
        return scheduler, self._memo, self._done

    def _end(self, end: StatusEvent) -> SessionReport:
        self._emit(end)
        self._status.on_completed()
        self._events.on_completed()
        report = build_report(
            self.current,
            self.transcript,
            self._summary,
            stop_requested=self._stop_requested,
            error=self._error,
        )
        self.log.info("session ended: {}", " | ".join(report.lines()))
        return report

    def _watch_outbox(self, scheduler: abc.SchedulerBase) -> abc.DisposableBase:
        """Put the audio counts into the state, coalesced. The outbox calls the coalescer
        itself: it changes once or twice per frame, and an observable between the two
        cost more calls per change than the coalescing."""
        counts: Coalescer[None] = Coalescer(
            COUNTS_EVERY_S,
            scheduler,
            lambda _: self._flush_counts(),
            granularity=TIMER_GRID_S,
            aligned=True,
        )
        unlisten = self._outbox.listen(functools.partial(counts.push, None))
        return CompositeDisposable(Disposable(unlisten), Disposable(counts.dispose))

    def _link(self, memo: LinkMemo, scheduler: abc.SchedulerBase) -> abc.DisposableBase:
        """The connection, retried with backoff, feeding status and events."""
        link = connect(self.config, self.ids, self._outbox, clock=self._clock, memo=memo).pipe(
            retry_with_backoff(
                self.config.backoff,
                self._classify,
                is_stable=lambda event: isinstance(event, Streaming),
                scheduler=scheduler,
                rng=self._rng,
                skip_delay=self._skip_delay,
            ),
            distinct_recent(_final_key, on_duplicate=self._dropped_duplicate, memory=self._seen),
        )
        return link.subscribe(
            self._on_link, self._on_link_error, self._on_link_completed, scheduler=scheduler
        )

    def _capture(self, demand: Demand, scheduler: abc.SchedulerBase) -> abc.DisposableBase:
        """Audio into the level meter's window and the outbox (never blocking): one
        subscriber to the source, one call per frame for each (a subject published to two
        chains of operators cost more per frame than the meter itself). Without a meter
        (`level_interval=None`) the outbox is the subscriber."""
        interval = self.config.level_interval
        meter = None
        if interval is not None:
            meter = LevelMeter(
                interval,
                lambda level: self._emit(audio_level(level)),
                scheduler,
                granularity=TIMER_GRID_S,
                aligned=True,
            )
        self._meter = meter
        push = self._outbox.push
        overdue = SerialDisposable()
        on_frame: Callable[[AudioFrame], None] = push
        if meter is not None:
            add = meter.add

            def on_frame(frame: AudioFrame) -> None:
                add(frame)
                push(frame)

        # the meter's last window comes before `Finalizing`, and a failing source still
        # shows it (its error is the capture's to report)
        def on_error(error: Exception) -> None:
            self._close_meter()
            self._on_audio_error(error)

        def on_end() -> None:
            self._close_meter()
            self._end_audio()
            self._bound_final_wait(scheduler, overdue)

        ticking = Disposable() if meter is None else meter.start()
        with demand_scope(demand):
            self._audio_sub = self._audio.subscribe(on_frame, on_error, on_end, scheduler=scheduler)
        return CompositeDisposable(self._audio_sub, ticking, overdue)

    def _bound_final_wait(self, scheduler: abc.SchedulerBase, timer: SerialDisposable) -> None:
        """The audio ended by itself: the session waits for delivery and the final summary
        as long as the backend makes progress (confirms frames), and ends when it has made
        none for `stop_timeout` (the report then says the summary never came)."""
        wait = self.config.stop_timeout
        self._progress_at = self._clock()

        def check(_: abc.SchedulerBase, __: object = None) -> None:
            if self._done is None or self._done.done():
                return
            idle = self._clock() - self._progress_at
            if idle < wait:
                timer.disposable = scheduler.schedule_relative(wait - idle, check)
                return
            self.log.warning("no progress and no final summary for {} s; ending the session", wait)
            self._finish(Stopped(at=self._clock()))

        timer.disposable = scheduler.schedule_relative(wait, check)

    async def stop(self, timeout: float | None = None) -> None:
        """End capture, deliver what is held, send `stop` and wait for the final summary.

        After `timeout` (default: `config.stop_timeout`) the session ends anyway, and what
        could not be delivered is reported as undelivered.
        """
        self._stop_requested = True
        if self._audio_sub is not None:
            self._audio_sub.dispose()
        self._close_meter()
        self._end_audio()
        if self._done is None or self._done.done():
            return
        wait = self.config.stop_timeout if timeout is None else timeout
        try:
            await asyncio.wait_for(asyncio.shield(self._done), wait)
        except TimeoutError:
            self.log.warning("no final summary within {} s; ending the session", wait)
            self._finish(Stopped(at=self._clock()))

    # -- internals ------------------------------------------------------------------

    def _close_meter(self) -> None:
        """The meter's window cut short comes out now, before `Finalizing` (if a meter)."""
        if self._meter is not None:
            self._meter.close()

    def _emit(self, event: StatusEvent) -> None:
        self._status.on_next(event)

    def _finish(self, end: StatusEvent) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(end)

    def _flush_counts(self) -> None:
        counts = self._outbox.counts()
        acked = sum(c.acked for c in counts.values())
        if acked != self._acked:
            self._acked, self._progress_at = acked, self._clock()
        self._emit(AudioCounts(at=self._clock(), counts=counts))

    def _classify(self, error: Exception) -> Decision:
        return errors.decide(error, busy_floor=self.config.busy_floor)

    def _end_audio(self) -> None:
        if not self._outbox.closed:
            self._outbox.close()
            self._emit(Finalizing(at=self._clock()))

    def _on_audio_error(self, error: Exception) -> None:
        """Deliver what was captured, then end as failed with the audio's reason."""
        self.log.error("audio source failed: {}", error)
        self._audio_failure = error
        self._end_audio()

    def _on_link(self, item: LinkEvent | Retry) -> None:
        statuses = link_status(item, self._clock())
        match item:
            case Retry(attempt=attempt, delay=delay, cause=cause):
                self.log.info("reconnecting: attempt {} in {:.2f} s ({})", attempt, delay, cause)
            case AsrFinal():
                self._transcript.append(item)
                if self._memo is not None:  # a resume tells the backend how many came
                    self._memo.final_received(item.source)
            case FinalSummary():
                self._summary = item
        if isinstance(item, Segment):  # the segment, then what it changes in the state
            self._events.on_next(item)
        for status in statuses:
            self._emit(status)
        if not isinstance(item, Retry | StatusEvent | Segment):
            self._events.on_next(item)

    def _dropped_duplicate(self, item: LinkEvent | Retry) -> None:
        assert isinstance(item, AsrFinal)
        self.log.debug("dropped a duplicate final {!r}", item.text[:40])

    def _on_link_error(self, error: Exception) -> None:
        reason = failure_reason(error)
        self._error = error
        self.log.error("session failed: {}", reason)
        self._finish(Failed(at=self._clock(), reason=reason, kind=errors.FailureKind.of(error)))

    def _on_link_completed(self) -> None:
        if self._audio_failure is not None:
            reason = f"audio source failed: {self._audio_failure}"
            self._error = self._audio_failure
            self._finish(Failed(at=self._clock(), reason=reason, kind=errors.FailureKind.AUDIO))
        else:
            self._finish(Stopped(at=self._clock()))
