"""Misbehaving backends for fault tests: real aiohttp servers on loopback, each wrong in one way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from backend.server import free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    """Serve `handler` at the protocol path; yields the WebSocket URL."""
    app = web.Application()
    app.router.add_get("/ws/live-listener", handler)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"ws://127.0.0.1:{port}/ws/live-listener"
    finally:
        await runner.cleanup()


async def http_401(request: web.Request) -> web.StreamResponse:
    raise web.HTTPUnauthorized()


async def rejects_format(request: web.Request) -> web.StreamResponse:
    """A v0.2 backend that refuses the audio format of `start`."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_json({"type": "status", "state": "connected"})
    await ws.receive()
    await ws.send_json({"type": "error", "message": "Unsupported audio format: 48000 Hz"})
    await ws.close(code=1000)
    return ws


async def freezes_after_streaming(request: web.Request) -> web.StreamResponse:
    """Accepts the session, then stops reading and writing (a hung process)."""
    ws = web.WebSocketResponse(autoping=True)
    await ws.prepare(request)
    await ws.send_json({"type": "status", "state": "connected"})
    await ws.receive()
    await ws.send_json({"type": "status", "state": "streaming"})
    await asyncio.sleep(3600)
    return ws
