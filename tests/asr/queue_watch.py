"""Watches the backend's ASR queues from inside (tests only): the deepest each one got."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from backend.store import SessionStore


class QueueWatch:
    def __init__(self) -> None:
        self.deepest = 0
        self.queue_max: int | None = None


@contextlib.asynccontextmanager
async def watching(store: SessionStore, every: float = 0.005) -> AsyncIterator[QueueWatch]:
    watch = QueueWatch()

    async def poll() -> None:
        while True:
            for session in list(store.sessions.values()):
                for stream in list(session.streams.values()):
                    watch.deepest = max(watch.deepest, stream.queue_depth)
                    watch.queue_max = stream.queue_max
            await asyncio.sleep(every)

    task = asyncio.get_running_loop().create_task(poll())
    try:
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
