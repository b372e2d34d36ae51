"""A scheduler's clock in seconds, read cheaply.

`scheduler.to_seconds(scheduler.now)` builds a datetime and a timedelta on every read,
and the real-time path reads the clock several times per frame. A scheduler that keeps
reactivex's own `now` (the wall clock in UTC: the asyncio, timeout and thread schedulers)
is read as `time.time()`, the same seconds without the objects; any other (virtual time
in tests) through its `now`.

    now = seconds_of(scheduler)
    now()  # seconds since the epoch, on the scheduler's clock
"""

from __future__ import annotations

import time
from collections.abc import Callable

from reactivex import abc
from reactivex.scheduler.scheduler import Scheduler


def seconds_of(scheduler: abc.SchedulerBase) -> Callable[[], float]:
    """A function reading `scheduler`'s time in seconds."""
    if isinstance(scheduler, Scheduler) and type(scheduler).now is Scheduler.now:
        return time.time
    return lambda: scheduler.to_seconds(scheduler.now)
