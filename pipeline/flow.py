"""Demand: lets sources that can wait (files, tones) run exactly as fast as the session delivers.

A live microphone cannot wait, so the outbox absorbs it (bounded). A file read with
`realtime=False` can: it asks the current `Demand` before each frame, and the session
holds demand back while the socket is behind or down. The session installs its Demand
in a context variable for the sources it subscribes to; outside a session, sources run
at full speed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import reactivex
from reactivex import Observable


class Demand:
    """Whether a waiting source may produce now: a predicate, evaluated when asked.

    A waiting source re-checks it on each of `changes` (the consumer's changes, e.g. the
    outbox's) until it holds; only while a source waits is `changes` subscribed, so a
    source that never waits (a live or real-time one) costs nothing per change.
    """

    def __init__(
        self,
        ready: Callable[[], bool] = lambda: True,
        changes: Observable[object] | None = None,
    ) -> None:
        self._ready = ready
        self._changes: Observable[object] = changes if changes is not None else reactivex.never()

    @property
    def ready(self) -> bool:
        return self._ready()

    async def wait(self) -> None:
        if self._ready():
            return
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def check(_: object = None) -> None:
            if not opened.done() and self._ready():
                opened.set_result(None)

        watching = self._changes.subscribe(check)
        try:
            check()  # it may have opened before the subscription
            await opened
        finally:
            watching.dispose()


_current: ContextVar[Demand | None] = ContextVar("live_listener_demand", default=None)


def current_demand() -> Demand | None:
    return _current.get()


@contextmanager
def demand_scope(demand: Demand) -> Iterator[Demand]:
    token = _current.set(demand)
    try:
        yield demand
    finally:
        _current.reset(token)
