"""Arbitrary frames from a server never crash a session or corrupt its state.

A real Session streams to a real aiohttp server on loopback that speaks v0.3 correctly
(acks, resume, final summary) but, on the first connection of each example, also sends
fuzzed frames: before `connected`, and after `streaming` while audio flows. One server
serves every example. Whatever it sent, the session ends with a report whose counts add
up; unless a well-formed error message told it to give up, it completes and the server
holds every frame once, in order.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.audio import SOURCES
from pipeline.ids import SessionIds
from pipeline.messages import to_wire
from pipeline.protocol import Ack, ErrorMessage, FinalSummary, Status, decode_event
from pipeline.session import Session
from pipeline.sources import from_samples
from tests.integration import rogue
from tests.integration.fuzzing import Frame, frames, server_messages
from tests.integration.test_session import chirp, fast
from tests.integration.tracebacks import tracebacks

ATTEMPT = "attempt-under-test"
FRAMES = 15
SAMPLES = chirp(FRAMES * 0.02)
FUZZ = settings(
    max_examples=40,
    deadline=None,
    # one server for every example, on purpose (it keeps no state between them)
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
fuzzed = st.lists(frames(server_messages(ATTEMPT)), max_size=12)


@dataclass
class Script:
    """What the next connection sends besides the protocol."""

    before_connected: list[Frame] = field(default_factory=list)
    after_streaming: list[Frame] = field(default_factory=list)


@dataclass
class FuzzServer:
    """A correct v0.3 backend, plus fuzzed frames on the first connection after `arm`."""

    script: Script | None = None
    # session id -> PCM received, in order, each frame once
    received: dict[str, bytearray] = field(default_factory=dict, repr=False)
    next_seq: dict[str, int] = field(default_factory=dict, repr=False)

    def arm(self, script: Script) -> None:
        self.script = script

    async def handle(self, request: web.Request) -> web.StreamResponse:
        script, self.script = self.script or Script(), None
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        with contextlib.suppress(ConnectionError):  # the client may leave at any frame
            await self._serve(ws, script)
        return ws

    async def _serve(self, ws: web.WebSocketResponse, script: Script) -> None:
        for frame in script.before_connected:
            await send(ws, frame)
        await reply(ws, to_wire(Status(state="connected")))
        first = await ws.receive()
        if first.type is not WSMsgType.TEXT:
            return
        sid = json.loads(first.data)["session_id"]
        resumed = sid in self.next_seq
        pcm = self.received.setdefault(sid, bytearray())
        next_seq = {"system": self.next_seq.setdefault(sid, 0)}
        await reply(ws, to_wire(Status(state="streaming", resumed=resumed, next_seq=next_seq)))
        for frame in script.after_streaming:
            await send(ws, frame)
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                return
            body = json.loads(msg.data)
            if body["type"] == "audio":
                if body["seq"] == self.next_seq[sid]:
                    pcm.extend(base64.b64decode(body["data"]))
                    self.next_seq[sid] += 1
                await reply(ws, to_wire(Ack(source="system", seq=self.next_seq[sid] - 1)))
            elif body["type"] == "stop":
                await reply(ws, to_wire(FinalSummary()))
                await ws.close(code=1000)


async def reply(ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
    await send(ws, Frame(json.dumps(message)))


async def send(ws: web.WebSocketResponse, frame: Frame) -> None:
    if ws.closed:
        return
    if frame.raw_text:
        assert isinstance(frame.data, bytes)
        await ws.send_frame(frame.data, WSMsgType.TEXT)
    elif isinstance(frame.data, str):
        await ws.send_str(frame.data)
    else:
        await ws.send_bytes(frame.data)


@pytest.fixture
async def fuzz_server() -> AsyncIterator[tuple[FuzzServer, str]]:
    server = FuzzServer()
    async with rogue.serving(server.handle) as url:
        yield server, url


def may_end_the_session(frames: list[Frame]) -> bool:
    """Some frame is a well-formed error for this attempt: a session may give up on it."""
    for frame in frames:
        if frame.raw_text or not isinstance(frame.data, str):
            continue
        event = decode_event(frame.data)
        if event.attempt_id not in (None, ATTEMPT):
            continue
        if isinstance(event, ErrorMessage) or (
            isinstance(event, Status) and event.state == "error"
        ):
            return True
    return False


@FUZZ
@given(before=fuzzed, after=fuzzed)
async def test_any_server_frames_leave_the_session_whole(
    before: list[Frame], after: list[Frame], fuzz_server: tuple[FuzzServer, str]
) -> None:
    server, url = fuzz_server
    server.arm(Script(before_connected=before, after_streaming=after))
    # a fresh id per example: object ids are reused once an example's lists are freed,
    # and the server would take a reused id for a resume of the earlier session
    ids = SessionIds(session_id=f"fuzz-{uuid.uuid4().hex}", attempt_id=ATTEMPT)
    session = Session(fast(url, heartbeat=0.5), from_samples(SAMPLES, realtime=False), ids=ids)

    with tracebacks() as crashes:
        report = await asyncio.wait_for(session.run(), 20)

    assert crashes == []
    counts = report.audio["system"]
    assert counts.captured == FRAMES and counts.dropped == 0
    assert counts.captured == counts.sent + counts.buffered + counts.dropped
    assert all(0 <= f.t0 <= f.t1 for f in report.transcript)
    if report.outcome == "failed":  # only for a reason the server gave, in its own words
        assert may_end_the_session(before + after), report.reason
        assert report.failure_kind in ("unauthorized", "bad_config"), report.reason
        return
    assert report.outcome == "completed", report.reason
    assert counts.acked == FRAMES and report.frames_lost == 0
    assert bytes(server.received[ids.session_id]) == SAMPLES.tobytes()
    assert set(report.audio) <= set(SOURCES)
