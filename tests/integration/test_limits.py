"""Limits of the backend and the client, each configurable, each enforced without a crash:
message size on both sides, the message rate (slowed, never dropped), invalid messages
(cut off with a reason), and frames that are not UTF-8 (closed by RFC 6455, resumable).
The session cap and the resume window are tested in test_session.py and test_chaos.py."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import pytest
from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType, web

from backend.recording import recorded_pcm
from pipeline.session import Session
from pipeline.sources import from_samples
from pipeline.status import BackendStatus, Reconnecting, StatusEvent
from tests.conftest import BackendFactory
from tests.integration import rogue
from tests.integration.fuzzing import valid_start
from tests.integration.test_session import chirp, fast
from tests.integration.tracebacks import tracebacks


def audio(seq: int | None, source: str = "system") -> str:
    body: dict[str, Any] = {
        "type": "audio",
        "source": source,
        "data": base64.b64encode(bytes(640)).decode(),
    }
    if seq is not None:
        body["seq"] = seq
    return json.dumps(body)


async def opened(http: ClientSession, url: str) -> ClientWebSocketResponse:
    ws = await http.ws_connect(url)
    assert (await ws.receive_json(timeout=5))["state"] == "connected"
    return ws


async def until(
    ws: ClientWebSocketResponse, kind: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while True:
        msg = await ws.receive(timeout=10)
        assert msg.type is WSMsgType.TEXT, (msg, seen)
        body = json.loads(msg.data)
        if kind in (body["type"], body.get("state")):
            return seen, body
        seen.append(body)


async def completes(url: str) -> None:
    """A real session runs start to finish against `url`."""
    report = await asyncio.wait_for(
        Session(fast(url), from_samples(chirp(0.4), realtime=False)).run(), 20
    )
    assert report.outcome == "completed" and report.frames_lost == 0, report.reason


# -- message size ---------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [False, True])
async def test_a_message_over_the_backends_limit_closes_1009_and_the_backend_serves_on(
    binary: bool, make_backend: BackendFactory
) -> None:
    async with make_backend(max_message_bytes=4096) as backend:
        with tracebacks() as crashes:
            async with ClientSession() as http:
                ws = await opened(http, backend.url)
                await (ws.send_bytes(bytes(4098)) if binary else ws.send_str("x" * 4097))
                assert (await ws.receive(timeout=5)).type is WSMsgType.CLOSE
                assert ws.close_code == 1009
            await completes(backend.url)
        assert backend.store.connections == 0
    assert crashes == []


async def sends_a_big_message(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_json({"type": "status", "state": "connected"})
    await ws.receive()
    await ws.send_json({"type": "status", "state": "streaming", "resumed": False, "next_seq": {}})
    await ws.send_json({"type": "final_summary", "markdown": "x" * 10_000})
    await ws.receive()
    return ws


async def test_a_message_over_the_clients_limit_fails_the_session_clearly() -> None:
    events: list[StatusEvent] = []
    async with rogue.serving(sends_a_big_message) as url:
        session = Session(fast(url, max_message_bytes=4096), from_samples(chirp(0.4)))
        session.status.subscribe(events.append)
        report = await asyncio.wait_for(session.run(), 20)
    assert report.outcome == "failed" and report.failure_kind == "bad_config"
    assert "over the size limit" in (report.reason or "") and "max_message_bytes" in (
        report.reason or ""
    )
    assert not any(isinstance(e, Reconnecting) for e in events)  # never retried


# -- frames that are not UTF-8 ----------------------------------------------------------------


async def test_a_text_frame_that_is_not_utf8_closes_1007_and_the_session_resumes(
    backend: Any,
) -> None:
    session_id = uuid.uuid4().hex
    with tracebacks() as crashes:
        async with ClientSession() as http:
            ws = await opened(http, backend.url)
            await ws.send_str(valid_start(session_id))
            _, first = await until(ws, "streaming")
            for seq in range(3):
                await ws.send_str(audio(seq))
            await ws.send_frame(b"\xff\xfe not text", WSMsgType.TEXT)
            assert (await ws.receive(timeout=5)).type is WSMsgType.CLOSE
            assert ws.close_code == 1007

            ws = await opened(http, backend.url)
            await ws.send_str(valid_start(session_id, resume={}, secret=first["resume_token"]))
            _, streaming = await until(ws, "streaming")
            await ws.close()
    assert streaming["resumed"] is True and streaming["next_seq"] == {"system": 3}
    assert crashes == []


# -- invalid messages ------------------------------------------------------------------------


async def test_a_flood_of_invalid_messages_is_cut_off_with_a_reason(
    make_backend: BackendFactory,
) -> None:
    async with make_backend(invalid_burst=20, max_invalid_rate=2.0) as backend:
        with tracebacks() as crashes:
            async with ClientSession() as http:
                ws = await opened(http, backend.url)
                for _ in range(100):
                    await ws.send_str("not json")
                errors, cut = await until(ws, "error")
                while cut["type"] == "error":  # the answers to invalid messages come first
                    errors.append(cut)
                    more, cut = await until(ws, "error")
                    errors.extend(more)
                assert (await ws.receive(timeout=5)).type is WSMsgType.CLOSE
                assert ws.close_code == 1008
            await completes(backend.url)  # others are served as before
    assert 20 <= len(errors) <= 25  # the burst, and what the rate refilled meanwhile
    assert cut == {
        "type": "status",
        "state": "error",
        "message": "Too many invalid messages (over 2/s): closing",
    }
    assert crashes == []


# -- the message rate -----------------------------------------------------------------------


async def test_a_fast_sender_is_slowed_to_the_rate_and_loses_nothing(
    make_backend: BackendFactory, record_dir: Any
) -> None:
    rate, burst, frames = 200, 20, 220
    session_id = uuid.uuid4().hex
    async with (
        make_backend(max_message_rate=rate, message_burst=burst) as backend,
        ClientSession() as http,
    ):
        ws = await opened(http, backend.url)
        await ws.send_str(valid_start(session_id, v03=False))
        await until(ws, "streaming")
        began = time.monotonic()
        for _ in range(frames):  # a v0.2 client: no acks, no seq, as fast as it can
            await ws.send_str(audio(None))
        await ws.send_str(json.dumps({"type": "stop", "session_id": session_id}))
        seen, summary = await until(ws, "final_summary")
        took = time.monotonic() - began

    assert took >= (frames - burst) / rate * 0.95  # held to the rate (a lower bound only)
    warnings = [m for m in seen if m.get("state") == "warning"]
    assert len(warnings) == 1 and warnings[0]["message"] == "Over 200 messages/s: reading slowed"
    assert summary["json"]["sources"]["system"]["received_s"] == frames * 0.02
    assert len(recorded_pcm(record_dir, session_id)) == frames * 640


async def test_a_file_sent_as_fast_as_acks_allow_is_slowed_not_failed(
    make_backend: BackendFactory, record_dir: Any
) -> None:
    samples = chirp(12.0)  # 600 frames
    events: list[StatusEvent] = []
    async with make_backend(max_message_rate=300, message_burst=50) as backend:
        session = Session(fast(backend.url, heartbeat=5.0), from_samples(samples, realtime=False))
        session.status.subscribe(events.append)
        report = await asyncio.wait_for(session.run(), 30)

    assert report.outcome == "completed" and report.frames_lost == 0, report.reason
    assert report.reconnects == 0  # pacing never trips a heartbeat
    assert any(isinstance(e, BackendStatus) and "reading slowed" in e.message for e in events)
    assert recorded_pcm(record_dir, session.ids.session_id) == samples.tobytes()
