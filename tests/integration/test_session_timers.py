"""Sessions in one process share their timers: while they stream, every timer they arm
per frame or per window (the real-time pacing, the level windows, the coalesced counts)
is the loop's one shared ticker, on its grid — timers armed at each session's own
moments cost a sleep and a wake of the process each."""

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


class Recording(LoopScheduler):
    """The session's scheduler, noting each timer armed on it (the action) while a
    session streams."""

    def __init__(self, loop: asyncio.AbstractEventLoop, streaming: list[bool]) -> None:
        super().__init__(loop)
        self.streaming = streaming
        self.armed: list[object] = []

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
    await asyncio.wait_for(asyncio.gather(*(s.run() for s in sessions)), 30)

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
