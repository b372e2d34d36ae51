"""Arbitrary client messages to the real backend: each gets an error message or is ignored,
never a traceback that drops the connection; the same connection then serves a session.

One backend serves every example (hypothesis runs them on the test's loop). Text frames
that are not UTF-8 end a connection by RFC 6455 (close 1007): tests/integration/test_limits.py.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import BackendFactory
from tests.integration.fuzzing import (
    Frame,
    audio_messages,
    bad_starts,
    frames,
    other_client_messages,
    valid_start,
)
from tests.integration.tracebacks import tracebacks

FUZZ = settings(
    max_examples=40,
    deadline=None,
    # one backend for every example, on purpose: a crash in one would show in the next
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
REPLY_TIMEOUT = 5.0
# Replies a fuzzed connection may see; anything else (a status "error", a close without
# an error first) is a failure.
ALLOWED_STATES = frozenset({"streaming", "warning", "backpressure", "no_asr_provider"})

before_start = st.lists(
    frames(st.one_of(audio_messages(), other_client_messages(), bad_starts()), invalid_utf8=False),
    max_size=20,
)


def after_start(session_id: str) -> st.SearchStrategy[list[Frame]]:
    second_starts = st.one_of(bad_starts(), st.just(valid_start(uuid.uuid4().hex)))
    texts = st.one_of(audio_messages(), other_client_messages(session_id), second_starts)
    return st.lists(frames(texts, invalid_utf8=False), max_size=20)


async def send(ws: ClientWebSocketResponse, frame: Frame) -> None:
    if frame.raw_text:
        assert isinstance(frame.data, bytes)
        await ws.send_frame(frame.data, WSMsgType.TEXT)
    elif isinstance(frame.data, str):
        await ws.send_str(frame.data)
    else:
        await ws.send_bytes(frame.data)


def is_bad_start(frame: Frame) -> bool:
    if not isinstance(frame.data, str):
        return False
    try:
        body = json.loads(frame.data)
    except (ValueError, RecursionError):
        return False
    return isinstance(body, dict) and body.get("type") == "start"


async def replies_until(
    ws: ClientWebSocketResponse, wanted: str
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Messages up to the first of type/state `wanted` (returned), or to the close (None)."""
    seen: list[dict[str, Any]] = []
    while True:
        msg = await ws.receive(timeout=REPLY_TIMEOUT)
        if msg.type is not WSMsgType.TEXT:
            return seen, None
        body = json.loads(msg.data)
        if wanted in (body.get("type"), body.get("state")):
            return seen, body
        seen.append(body)


def assert_only_answers(replies: list[dict[str, Any]]) -> None:
    for reply in replies:
        kind = reply["type"]
        assert kind in ("error", "ack", "metrics", "status", "asr_final", "asr_partial"), reply
        if kind == "status":
            assert reply["state"] in ALLOWED_STATES, reply


def pcm_frames(count: int) -> list[str]:
    return [
        json.dumps(
            {
                "type": "audio",
                "source": "system",
                "seq": seq,
                "data": base64.b64encode(bytes([seq % 256]) * 640).decode(),
            }
        )
        for seq in range(count)
    ]


@FUZZ
@given(garbage=before_start, data=st.data())
async def test_any_client_messages_get_an_answer_never_a_crash(
    garbage: list[Frame], data: st.DataObject, make_backend: BackendFactory, backend: Any
) -> None:
    session_id = uuid.uuid4().hex
    with tracebacks() as crashes:
        async with ClientSession() as http:
            ws = await http.ws_connect(backend.url)
            assert (await ws.receive_json(timeout=REPLY_TIMEOUT))["state"] == "connected"
            for frame in garbage:
                await send(ws, frame)
            await ws.send_str(valid_start(session_id))
            replies, streaming = await replies_until(ws, "streaming")
            if any(map(is_bad_start, garbage)):
                # refused: an error message says why, then a normal close
                assert streaming is None and replies and replies[-1]["type"] == "error"
                assert ws.close_code == 1000
                await ws.close()
                ws = await http.ws_connect(backend.url)
                await ws.receive_json(timeout=REPLY_TIMEOUT)
                await ws.send_str(valid_start(session_id))
                replies, streaming = await replies_until(ws, "streaming")
            assert streaming is not None and streaming["resumed"] is False, replies
            assert_only_answers(replies)

            for frame in data.draw(after_start(session_id), label="after start"):
                await send(ws, frame)
            for audio in pcm_frames(5):
                await ws.send_str(audio)
            await ws.send_str(json.dumps({"type": "stop", "session_id": session_id}))
            replies, summary = await replies_until(ws, "final_summary")
            assert_only_answers(replies)
            assert summary is not None and summary["json"]["session_id"] == session_id
            assert (await ws.receive()).type is WSMsgType.CLOSE and ws.close_code == 1000
            await ws.close()
    assert crashes == []
    assert not any(key[0] == session_id for key in backend.store.sessions)
