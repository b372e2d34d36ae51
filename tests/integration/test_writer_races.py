"""The writer's short cuts against the wire: however acks, new frames and the end of the
audio fall around its sends (flow window always full, v0.2 barriers, a live stream stopped
midway, v0.3 JSON or binary), every frame goes out once, in order, `stop` goes exactly
once and after the last frame, and the accounting is exact.

A recording proxy between client and backend sees every message; it can hold the
backend's replies (acks) back, so the flow window is full at almost every send."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from pipeline.audio import FRAME_SAMPLES, SAMPLE_RATE
from pipeline.protocol import decode_audio_binary
from pipeline.session import Session
from pipeline.sources import from_samples
from pipeline.status import AudioCounts, StatusEvent
from tests.integration.rogue import serving
from tests.integration.test_session import chirp, fast

SECONDS = 1.0
FRAMES = round(SECONDS * SAMPLE_RATE) // FRAME_SAMPLES  # frames in SECONDS
CUT_AFTER = 20  # frames through the first connection before it is cut


@dataclass
class Wire:
    """What the client sent, in order: ("audio", source, seq) or ("text", type)."""

    sent: list[tuple[Any, ...]] = field(default_factory=list)

    def audio(self) -> list[tuple[Any, ...]]:
        return [m for m in self.sent if m[0] == "audio"]

    def stops(self) -> list[int]:
        return [i for i, m in enumerate(self.sent) if m == ("text", "stop")]


@asynccontextmanager
async def recording_proxy(
    upstream: str, reply_delay: float, cut_after: int | None = None
) -> AsyncIterator[tuple[str, Wire]]:
    """With `cut_after`, the first connection is cut (1006, no close frame) once that many
    audio frames went through it: a network fault mid-write."""
    wire = Wire()
    connections = [0]

    async def handle(request: web.Request) -> web.StreamResponse:
        client = web.WebSocketResponse(autoping=False)
        await client.prepare(request)
        connections[0] += 1
        cut = cut_after if connections[0] == 1 else None
        through = [0]
        headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(upstream, headers=headers, autoping=False) as server,
        ):

            async def up() -> None:
                async for msg in client:
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        body = json.loads(msg.data)
                        kind = body.get("type")
                        if kind == "audio":
                            wire.sent.append(("audio", body.get("source"), body.get("seq")))
                        else:
                            wire.sent.append(("text", kind))
                        await server.send_str(msg.data)
                    elif msg.type is aiohttp.WSMsgType.BINARY:
                        payload = decode_audio_binary(msg.data)
                        wire.sent.append(("audio", payload.source, payload.seq))
                        await server.send_bytes(msg.data)
                        through[0] += 1
                        if through[0] == cut:
                            wire.sent.append(("cut",))
                            assert request.transport is not None
                            request.transport.abort()
                            await server.close()
                            return
                    elif msg.type is aiohttp.WSMsgType.PING:
                        await server.ping(msg.data)
                    elif msg.type is aiohttp.WSMsgType.PONG:
                        await server.pong(msg.data)
                await server.close()

            async def down() -> None:
                async for msg in server:
                    await asyncio.sleep(reply_delay)  # acks (and pongs) come late
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        await client.send_str(msg.data)
                    elif msg.type is aiohttp.WSMsgType.PING:
                        await client.ping(msg.data)
                    elif msg.type is aiohttp.WSMsgType.PONG:
                        await client.pong(msg.data)
                await client.close()

            await asyncio.gather(up(), down(), return_exceptions=True)
        return client

    async with serving(handle) as url:
        yield url, wire


def assert_once_in_order(wire: Wire, frames: int, *, seqs: bool) -> None:
    audio = wire.audio()
    assert len(audio) == frames
    if seqs:
        assert [m[2] for m in audio] == list(range(frames))
    stops = wire.stops()
    assert len(stops) == 1
    assert stops[0] > max(i for i, m in enumerate(wire.sent) if m[0] == "audio")


@pytest.mark.parametrize(
    ("backend_protocol", "window_s", "binary_seq"),
    [
        ("0.3", 0.06, True),  # a window of 3 frames, acks held back: full at most sends
        ("0.3", 0.02, False),  # a window of one frame, JSON with seq
        ("0.3", 10.0, True),  # no window in the way: the writer runs dry between bursts
        ("0.2", 10.0, False),  # barriers confirm, and pace the writer
    ],
)
async def test_a_file_goes_out_once_in_order_with_one_stop_after_it(
    make_backend: Any, backend_protocol: str, window_s: float, binary_seq: bool
) -> None:
    async with (
        make_backend(protocol=backend_protocol, ack_every=2, ack_interval=0.01) as backend,
        recording_proxy(backend.url, reply_delay=0.002) as (url, wire),
    ):
        config = fast(url, flow_window=window_s, binary_seq=binary_seq)
        session = Session(config, from_samples(chirp(SECONDS), realtime=False))
        report = await asyncio.wait_for(session.run(), 30)

    assert report.outcome == "completed", report.reason
    assert report.reconnects == 0
    totals = report.totals
    assert (totals.captured, totals.sent, totals.acked) == (FRAMES, FRAMES, FRAMES)
    assert (totals.resent, totals.dropped, totals.unconfirmed) == (0, 0, 0)
    assert session.current.audio["system"].acked == FRAMES  # the coalesced counts caught up
    assert_once_in_order(wire, FRAMES, seqs=backend_protocol == "0.3")


async def test_a_live_stream_stopped_midway_ends_with_one_stop_after_its_last_frame(
    make_backend: Any,
) -> None:
    async with (
        make_backend(ack_every=2, ack_interval=0.01) as backend,
        recording_proxy(backend.url, reply_delay=0.002) as (url, wire),
    ):
        session = Session(fast(url, flow_window=0.06), from_samples(chirp(5.0), realtime=True))
        midway = asyncio.Event()

        def note(event: StatusEvent) -> None:
            if isinstance(event, AudioCounts) and event.counts["system"].acked >= 10:
                midway.set()

        session.status.subscribe(note)
        task = asyncio.create_task(session.run())
        await asyncio.wait_for(midway.wait(), 30)
        await session.stop()
        report = await asyncio.wait_for(task, 30)

    assert report.outcome == "stopped"
    totals = report.totals
    assert 10 <= totals.captured < 250
    assert (totals.sent, totals.acked) == (totals.captured, totals.captured)
    assert (totals.resent, totals.dropped, totals.unconfirmed) == (0, 0, 0)
    assert session.current.audio["system"].acked == totals.captured
    assert_once_in_order(wire, totals.captured, seqs=True)


async def test_a_connection_cut_mid_write_resumes_and_every_frame_is_confirmed_once(
    make_backend: Any,
) -> None:
    async with (
        make_backend(ack_every=2, ack_interval=0.01) as backend,
        recording_proxy(backend.url, reply_delay=0.002, cut_after=CUT_AFTER) as (url, wire),
    ):
        config = fast(url, flow_window=0.1)  # 5 frames in flight when the cut comes
        session = Session(config, from_samples(chirp(SECONDS), realtime=False))
        report = await asyncio.wait_for(session.run(), 30)

    assert report.outcome == "completed", report.reason
    assert (report.reconnects, report.resumes) == (1, 1)
    totals = report.totals
    assert (totals.captured, totals.sent, totals.acked) == (FRAMES, FRAMES, FRAMES)
    assert (totals.dropped, totals.unconfirmed) == (0, 0)
    assert session.current.audio["system"].acked == FRAMES
    cut = wire.sent.index(("cut",))
    before = [m[2] for m in wire.sent[:cut] if m[0] == "audio"]
    after = [m[2] for m in wire.sent[cut:] if m[0] == "audio"]
    assert before == list(range(CUT_AFTER))
    # the new connection writes from the backend's resume point on, in order, to the end
    assert after == list(range(after[0], FRAMES)) and after[0] <= CUT_AFTER
    assert totals.resent == CUT_AFTER - after[0]
    assert len(wire.stops()) == 1 and wire.stops()[0] > cut
