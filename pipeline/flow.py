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


class Demand:
    """Whether a waiting source may produce now: a predicate, evaluated when asked.

    The consumer calls `poke()` after any change that may open the gate; that is a
    single check unless a source is actually waiting.
    """

    def __init__(self, ready: Callable[[], bool] = lambda: True) -> None:
        self._ready = ready
        self._waiter: asyncio.Event | None = None

    @property
    def ready(self) -> bool:
        return self._ready()

    def poke(self) -> None:
        if self._waiter is not None and self._ready():
            self._waiter.set()

    async def wait(self) -> None:
        while not self._ready():
            self._waiter = asyncio.Event()
            try:
                await self._waiter.wait()
            finally:
                self._waiter = None


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
