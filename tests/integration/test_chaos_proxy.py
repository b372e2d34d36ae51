"""The chaos proxy's own promises, against a bare aiohttp WebSocket server on loopback.

A v0.2 backend confirms a frame only by the PONG of the ping written after it: a reset
must let that PONG through however late the backend sends it (a recogniser busy
decoding), or a frame the backend recorded is counted unconfirmed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from backend.chaos import GRACE, ChaosProxy, Fault

SLOW_PONG = 0.3  # six times the grace: the cut used to come before such a pong
RESET = Fault(at=0, kind="reset", duration=0.1)


@dataclass
class Peer:
    """A WebSocket server that answers pings `pong_after` seconds late (never, if None),
    and blocks its reading meanwhile, as a backend decoding inline does."""

    pong_after: float | None
    port: int = 0
    frames: list[bytes] = field(default_factory=list)
    got_frame: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if "refuse" in request.query:
            return web.Response(status=401, text="refused: no token")
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        async for message in ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                self.frames.append(message.data)
                self.got_frame.set()
            elif message.type == aiohttp.WSMsgType.PING:
                if self.pong_after is None:
                    await asyncio.Event().wait()  # never
                else:
                    await asyncio.sleep(self.pong_after)
                await ws.pong(message.data)
        return ws


@asynccontextmanager
async def peer_behind_proxy(
    pong_after: float | None, **proxy: float
) -> AsyncIterator[tuple[Peer, ChaosProxy]]:
    peer = Peer(pong_after)
    app = web.Application()
    app.router.add_get("/ws/live-listener", peer.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    peer.port = runner.addresses[0][1]
    try:
        async with ChaosProxy(peer.port, **proxy) as chaos:  # type: ignore[arg-type]
            yield peer, chaos
    finally:
        await runner.cleanup()


async def frame_ping_then_reset(
    peer: Peer, chaos: ChaosProxy, wait: float, *, during: bytes | None = None
) -> list[aiohttp.WSMessage]:
    """Sends one frame and its ping barrier, resets once the peer has the frame (sending
    `during` once the reset holds traffic toward the peer), and returns what the client
    read until its connection ended; each step may take `wait` seconds."""
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(chaos.url, autoping=False, heartbeat=None) as ws,
    ):
        await ws.send_bytes(b"frame 1")
        await ws.ping(b"barrier 1")
        await asyncio.wait_for(peer.got_frame.wait(), wait)
        reset = asyncio.ensure_future(chaos.inject(RESET))
        await asyncio.sleep(0)  # the reset holds traffic toward the peer, and waits
        if during is not None:
            await ws.send_bytes(during)
        await asyncio.wait_for(reset, wait)
        read: list[aiohttp.WSMessage] = []
        while (message := await asyncio.wait_for(ws.receive(), wait)).type not in (
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.ERROR,
        ):
            read.append(message)
        return read


async def test_a_reset_lets_a_slow_backends_pong_through_before_the_cut() -> None:
    assert SLOW_PONG > GRACE
    async with peer_behind_proxy(SLOW_PONG) as (peer, chaos):
        read = await frame_ping_then_reset(peer, chaos, chaos.drain + SLOW_PONG)
    assert peer.frames == [b"frame 1"]
    assert [(m.type, m.data) for m in read] == [(aiohttp.WSMsgType.PONG, b"barrier 1")]
    assert chaos.stats.resets == 1 and chaos.stats.audio_frames_forwarded == 1
    assert chaos.stats.audio_frames_cut == 0


async def test_a_frame_held_back_by_a_reset_is_counted_cut() -> None:
    async with peer_behind_proxy(SLOW_PONG) as (peer, chaos):
        read = await frame_ping_then_reset(peer, chaos, chaos.drain + SLOW_PONG, during=b"frame 2")
    assert peer.frames == [b"frame 1"]  # the second never reached the peer...
    assert [(m.type, m.data) for m in read] == [(aiohttp.WSMsgType.PONG, b"barrier 1")]
    assert chaos.stats.audio_frames_forwarded == 1
    assert chaos.stats.audio_frames_cut == 1  # ...and is counted as cut


async def test_a_backend_that_never_answers_is_cut_at_the_drain_bound() -> None:
    drain = 4 * GRACE
    async with peer_behind_proxy(None, drain=drain) as (peer, chaos):
        read = await frame_ping_then_reset(peer, chaos, 10 * drain)
        connection_count = len(chaos.connections)
    assert peer.frames == [b"frame 1"]
    assert read == []  # no pong came, and the cut came anyway
    assert connection_count == 0 and chaos.stats.resets == 1


async def test_a_refusal_and_its_body_pass_through_unparsed() -> None:
    async with peer_behind_proxy(0.0) as (_, chaos):
        reader, writer = await asyncio.open_connection(chaos.host, chaos.port)
        writer.write(
            b"GET /ws/live-listener?refuse=1 HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        response = await asyncio.wait_for(reader.read(), 2 * chaos.drain)
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401")
    assert body == b"refused: no token"
