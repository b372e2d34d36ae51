"""Sessions in one process share their timers: while they stream, every timer they arm
per frame or per window (the real-time pacing, the level windows, the coalesced counts)
is the loop's one shared ticker, on its grid — timers armed at each session's own
moments cost a sleep and a wake of the process each — and their windows and counts,
aligned, close in the same steps, one batch for all of them."""

from __future__ import annotations

import asyncio
from typing import Any

from reactivex import abc, typing

from operators.ticker import Ticker
from pipeline.loop_scheduler import TIMER_GRID_S, LoopScheduler
from pipeline.session import Session
from pipeline.sources import from_samples
from pipeline.status import AudioCounts, AudioLevel, Finalizing, StatusEvent, Streaming
from tests.integration.test_session import chirp, fast

SESSIONS = 3
SECONDS = 1.5
STAGGER_S = 0.023


class Recording(LoopScheduler):
    """The session's scheduler, noting each timer armed on it (the action) and each batch
    of the ticker's deferred actions (their entries) while a session streams."""

    def __init__(self, loop: asyncio.AbstractEventLoop, streaming: list[bool]) -> None:
        super().__init__(loop)
        self.streaming = streaming
        self.armed: list[object] = []
        self.batches: list[list[object]] = []

    def schedule(
        self, action: typing.ScheduledAction[Any], state: Any = None
    ) -> abc.DisposableBase:
        if self.streaming[0] and getattr(action, "__name__", None) == "_run_deferred":
            self.batches.append(list(state))
        return super().schedule(action, state)

    def schedule_relative(
        self, duetime: typing.RelativeTime, action: typing.ScheduledAction[Any], state: Any = None
    ) -> abc.DisposableBase:
        if self.streaming[0]:
            self.armed.append(action)
        return super().schedule_relative(duetime, action, state)


async def test_streaming_sessions_arm_their_timers_on_the_loops_one_ticker(backend: Any) -> None:
    loop = asyncio.get_running_loop()
    streaming = [False]
    schedulers = [Recording(loop, streaming) for _ in range(SESSIONS)]
    sessions = [
        Session(
            fast(backend.url, level_interval=0.1),
            from_samples(chirp(SECONDS), realtime=True),
            scheduler=scheduler,
        )
        for scheduler in schedulers
    ]
    events: list[list[StatusEvent]] = [[] for _ in sessions]
    for session, seen in zip(sessions, events, strict=True):
        session.status.subscribe(seen.append)

    def watch(event: StatusEvent) -> None:
        # from the first session streaming until the first one's audio ends
        if isinstance(event, Streaming):
            streaming[0] = True
        elif isinstance(event, Finalizing):
            streaming[0] = False

    for session in sessions:
        session.status.subscribe(watch)

    async def run(index: int, session: Session) -> None:
        # started apart, off the grid and the windows: each session at its own moment
        await asyncio.sleep(index * STAGGER_S)
        await session.run()

    await asyncio.wait_for(asyncio.gather(*(run(i, s) for i, s in enumerate(sessions))), 30)

    armed = [action for scheduler in schedulers for action in scheduler.armed]
    fired = [a for a in armed if isinstance(getattr(a, "__self__", None), Ticker)]
    owners = {getattr(a, "__self__", None) for a in fired}
    assert fired and len(owners) == 1
    (ticker,) = owners
    assert isinstance(ticker, Ticker) and ticker.granularity == TIMER_GRID_S
    assert {getattr(a, "__name__", None) for a in fired} == {"_fire"}
    # besides: once per connection, the backoff's reset after `reset_after` of streaming
    assert len(armed) - len(fired) <= SESSIONS
    # and the windows and counts did come, through it
    for seen in events:
        assert sum(isinstance(e, AudioLevel) for e in seen) >= round(SECONDS / 0.1) - 1
        assert any(isinstance(e, AudioCounts) for e in seen)
    # the windows and counts of all three, started apart, close in shared steps: each
    # batch of deferred runs carries one of each session, not one session's alone (but
    # each session's first counts, at once, and the edges of the streaming span)
    batches = [batch for scheduler in schedulers for batch in scheduler.batches]
    assert len(batches) >= round(SECONDS / 0.1) - 3
    assert sum(len(batch) >= SESSIONS for batch in batches) >= len(batches) - SESSIONS - 2
