"""`seconds_of`: a scheduler's time in seconds, the same as `to_seconds(now)`, cheaper."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from reactivex.scheduler import TimeoutScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.testing import TestScheduler

from operators.clock import seconds_of
from pipeline.loop_scheduler import LoopScheduler


def test_virtual_time_is_read_through_the_schedulers_own_now() -> None:
    scheduler = TestScheduler()
    now = seconds_of(scheduler)
    assert now() == 0.0
    scheduler.advance_by(timedelta(seconds=3.25))
    assert now() == 3.25


def test_wall_clock_schedulers_are_read_as_time_time() -> None:
    """Schedulers that keep reactivex's own `now` (the wall clock in UTC) skip the datetime."""
    loop = asyncio.new_event_loop()
    try:
        for scheduler in (
            AsyncIOScheduler(loop),
            LoopScheduler(loop),  # the session's
            TimeoutScheduler.singleton(),
        ):
            assert seconds_of(scheduler) is time.time
    finally:
        loop.close()


_FIXED = datetime(2030, 1, 1, tzinfo=UTC)


class _Fixed(AsyncIOScheduler):
    """An asyncio scheduler with its own notion of now: a fixed instant."""

    @property
    def now(self) -> datetime:
        return _FIXED


def test_a_scheduler_that_overrides_now_is_read_through_it() -> None:
    loop = asyncio.new_event_loop()
    try:
        now = seconds_of(_Fixed(loop))
        assert now is not time.time
        assert now() == _FIXED.timestamp()
    finally:
        loop.close()
