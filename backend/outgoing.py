"""A connection's outgoing messages: one queue, one writer, so their order holds."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web


class Outgoing:
    """Messages queued by `send` go out in order once `start` sets the writer going."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(self._write())

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message for the socket's single writer, which keeps their order."""
        self._queue.put_nowait(message)

    async def _write(self) -> None:
        while (message := await self._queue.get()) is not None:
            if self.ws.closed:
                continue
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(json.dumps(message, separators=(",", ":")))

    async def flush(self) -> None:
        """Send everything queued, then stop the writer."""
        self._queue.put_nowait(None)
        if self._writer is not None:
            await self._writer

    def cancel(self) -> list[asyncio.Task[None]]:
        """Stop the writer, whatever is still queued; the task to await, if any."""
        if self._writer is None:
            return []
        self._writer.cancel()
        return [self._writer]
