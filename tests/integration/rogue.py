"""Misbehaving backends for fault tests: real aiohttp servers on loopback, each wrong in one way."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from backend.server import free_port
from pipeline.messages import to_wire
from pipeline.protocol import Ack, AsrFinal, ErrorMessage, FinalSummary, Status

CONNECTED = to_wire(Status(state="connected"))

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
    await ws.send_json(CONNECTED)
    await ws.receive()
    await ws.send_json(to_wire(ErrorMessage(message="Unsupported audio format: 48000 Hz")))
    await ws.close(code=1000)
    return ws


async def freezes_after_streaming(request: web.Request) -> web.StreamResponse:
    """Accepts the session, then stops reading and writing (a hung process)."""
    ws = web.WebSocketResponse(autoping=True)
    await ws.prepare(request)
    await ws.send_json(CONNECTED)
    await ws.receive()
    await ws.send_json(to_wire(Status(state="streaming")))
    await asyncio.sleep(3600)
    return ws


class Scripted:
    """A small v0.3 backend (acks, resume, `final_summary`) that misbehaves on purpose,
    one way per connection as `script` says; connections past the script behave.

    Ways: "honest"; "restart_after_10" (close 1012 after 10 frames); "notice_then_1012"
    (after 10 frames, a one-off `{"type":"error"}` notice, then close 1012); "http_404"
    (no WebSocket at all); "ack_future" (acks a frame far beyond what was written);
    "next_seq_future" (a resume that claims frames never written); "flood" (`flood`
    distinct finals, then a replay of the last one, then honest); "freeze_v02" (a v0.2
    backend: no acks, reads 10 frames, then stops reading and writing for good); "v02"
    (a v0.2 backend that behaves); "no_summary" (never answers `stop`); "ends_at_stop"
    (ends the session at `stop` and drops the connection before its summary goes: a later
    connection finds no session to resume); "summary_then_1011" (answers `stop` with the
    summary, then closes 1011 instead of 1000).
    """

    def __init__(self, script: list[str], *, flood: int = 0) -> None:
        self.script = script
        self.flood = flood
        self.connections = 0
        self.frames: dict[int, bytes] = {}  # seq -> pcm, as received
        self.read_per_connection: list[int] = []
        self.stops = 0  # `stop` messages received, over all connections
        self.ended = False  # the session was ended at `stop`: it resumes no more

    @property
    def next_seq(self) -> int:
        return max(self.frames) + 1 if self.frames else 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        mode = self.script[self.connections] if self.connections < len(self.script) else "honest"
        self.connections += 1
        if mode == "http_404":
            raise web.HTTPNotFound()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json(CONNECTED)
        start = await ws.receive_json()
        streaming = Status(state="streaming")
        if mode not in ("freeze_v02", "v02"):
            resumed = "resume" in start and not self.ended
            claimed = self.next_seq + (1000 if mode == "next_seq_future" else 0)
            next_seq = {"system": claimed} if resumed else {}
            streaming = Status(state="streaming", resumed=resumed, next_seq=next_seq)
        await ws.send_json(to_wire(streaming))
        if mode == "flood":
            await self._flood(ws)
        self.read_per_connection.append(0)
        await self._serve(ws, mode)
        return ws

    async def _flood(self, ws: web.WebSocketResponse) -> None:
        for n in range(self.flood):
            final = AsrFinal(text=f"word {n}", t0=n, t1=n + 0.5, segment_id=f"flood-{n}")
            await ws.send_json(to_wire(final))
        await ws.send_json(to_wire(final))

    async def _serve(self, ws: web.WebSocketResponse, mode: str) -> None:
        async for msg in ws:
            body = json.loads(msg.data)
            if body.get("type") == "stop":
                await self._stop(ws, mode, body["session_id"])
                return
            seq = body.get("seq", self.next_seq)
            self.frames[seq] = base64.b64decode(body["data"])
            self.read_per_connection[-1] += 1
            read = self.read_per_connection[-1]
            if mode == "freeze_v02" and read >= 10:
                await asyncio.sleep(3600)
            if mode in ("freeze_v02", "v02"):
                continue  # v0.2: no acks
            if mode in ("restart_after_10", "notice_then_1012") and read >= 10:
                if mode == "notice_then_1012":
                    await ws.send_json(to_wire(ErrorMessage(message="transcoder hiccup")))
                await ws.close(code=1012, message=b"restarting")
                return
            lie = 1000 if mode == "ack_future" else 0
            await ws.send_json(to_wire(Ack(source="system", seq=seq + lie)))

    async def _stop(self, ws: web.WebSocketResponse, mode: str, session_id: str) -> None:
        self.stops += 1
        if mode == "no_summary":
            await asyncio.sleep(3600)  # answers pings (aiohttp does), never the stop
        if mode == "ends_at_stop":
            self.ended = True  # transcribed, summarised, forgotten; the reply is lost
            await ws.close(code=1011)
            return
        summary = {"session_id": session_id, "frames": len(self.frames)}
        await ws.send_json(to_wire(FinalSummary(markdown="", json=summary)))
        await ws.close(code=1011 if mode == "summary_then_1011" else 1000)
