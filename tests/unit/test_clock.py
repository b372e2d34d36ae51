"""`seconds_of`: a scheduler's time in seconds, the same as `to_seconds(now)`, cheaper."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from reactivex.scheduler import TimeoutScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.testing import TestScheduler

from operators.clock import seconds_of


def test_virtual_time_is_read_through_the_schedulers_own_now() -> None:
    scheduler = TestScheduler()
    now = seconds_of(scheduler)
    assert now() == scheduler.to_seconds(scheduler.now)
    scheduler.advance_by(timedelta(seconds=3.25))
    assert now() == scheduler.to_seconds(scheduler.now)


def test_wall_clock_schedulers_read_the_same_seconds_as_their_now() -> None:
    loop = asyncio.new_event_loop()
    try:
        for scheduler in (AsyncIOScheduler(loop), TimeoutScheduler.singleton()):
            now = seconds_of(scheduler)
            before = scheduler.to_seconds(scheduler.now)
            read = now()
            after = scheduler.to_seconds(scheduler.now)
            assert now is time.time
            # `now` has microsecond resolution: the read lies between the two, to within it
            assert before - 1e-6 <= read <= after + 1e-6
    finally:
        loop.close()


class _Shifted(AsyncIOScheduler):
    """A scheduler with its own notion of now: a day ahead."""

    @property
    def now(self):  # type: ignore[no-untyped-def]
        return super().now + timedelta(days=1)


def test_a_scheduler_that_overrides_now_is_read_through_it() -> None:
    loop = asyncio.new_event_loop()
    try:
        scheduler = _Shifted(loop)
        assert seconds_of(scheduler)() > time.time() + 86_000
    finally:
        loop.close()
