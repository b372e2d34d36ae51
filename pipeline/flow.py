"""Demand: lets sources that can wait (files, tones) run exactly as fast as the session delivers.

A live microphone cannot wait, so the outbox absorbs it (bounded). A file read with
`realtime=False` can: it asks the current `Demand` before each frame, and the session
holds demand back while the socket is behind or down. The session installs its Demand
in a context variable for the sources it subscribes to; outside a session, sources run
at full speed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class Demand:
    """An open/closed gate; sources await it between frames."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()

    @property
    def ready(self) -> bool:
        return self._open.is_set()

    def set_ready(self, ready: bool) -> None:
        if ready:
            self._open.set()
        else:
            self._open.clear()

    async def wait(self) -> None:
        await self._open.wait()


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
