"""A resume sends again only the finals the client has not received: the client says how
many of each source it has (`finals_received` in `start`). Real backend (with the
`Labeller` recogniser: a final per second of audio, ids `system-1`, `system-2`, ...), real
`Session`, and a relay between them that counts the finals on the wire and loses one."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType, web

from backend.config import BackendConfig
from backend.server import RunningBackend, running_backend
from backend.store import SessionStore
from pipeline.session import Session
from pipeline.sources import from_samples
from tests.integration.fuzzing import valid_start
from tests.integration.rogue import serving
from tests.integration.test_session import chirp, fast
from tests.security.labeller import Labeller
from tests.security.polling import until_true
from tests.security.test_ownership import messages_until

SECONDS = 8  # of audio: the Labeller's finals system-1 .. system-8
LOST = 3  # the relay's first connection loses system-3 in flight, and dies


class FinalsRelay:
    """Passes every message between a client and the backend, and notes the id of each
    final it hands the client, per connection. On its first connection it loses the
    `LOST`-th final (and whatever follows it) and closes both sockets; it never passes a
    `stop` there, so the session is still open when that happens."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.passed: list[list[str]] = []
        self.lost: list[str] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        client = web.WebSocketResponse()
        await client.prepare(request)
        passed: list[str] = []
        self.passed.append(passed)
        first = len(self.passed) == 1
        code = 1001  # going away, when the relay cuts: the client resumes
        async with ClientSession() as http, http.ws_connect(self.upstream) as backend:
            upward = asyncio.get_running_loop().create_task(self._up(client, backend, first))
            try:
                async for msg in backend:
                    body = json.loads(msg.data)
                    if body["type"] == "asr_final":
                        if first and len(passed) + 1 == LOST:
                            self.lost.append(body["segment_id"])
                            break
                        passed.append(body["segment_id"])
                    await client.send_str(msg.data)
                else:
                    code = backend.close_code or code  # the backend closed: so does the relay
            finally:
                upward.cancel()
        await client.close(code=code)
        return client

    async def _up(
        self, client: web.WebSocketResponse, backend: ClientWebSocketResponse, first: bool
    ) -> None:
        async for msg in client:
            if msg.type is WSMsgType.BINARY:
                await backend.send_bytes(msg.data)
            elif not (first and json.loads(msg.data)["type"] == "stop"):
                await backend.send_str(msg.data)


def labelled_backend(**overrides: Any) -> Any:
    config = BackendConfig(**overrides)
    return running_backend(config, store=SessionStore(config, Labeller))


async def test_a_resume_resends_only_the_finals_lost_in_flight() -> None:
    async with labelled_backend() as backend:
        relay = FinalsRelay(backend.url)
        async with serving(relay.handle) as url:
            session = Session(fast(url), from_samples(chirp(SECONDS), realtime=False))
            report = await asyncio.wait_for(session.run(), 60)

    assert report.outcome == "completed" and report.frames_lost == 0, report.reason
    assert report.resumes == 1 and report.resets == 0
    everything = [f"system-{n}" for n in range(1, SECONDS + 1)]
    assert relay.lost == [f"system-{LOST}"]
    assert relay.passed[0] == everything[: LOST - 1]
    # on the wire after the resume: the lost final and the ones after it, each once
    assert relay.passed[1] == everything[LOST - 1 :]
    assert [final.segment_id for final in report.transcript] == everything


async def three_finals_then_lost(
    http: ClientSession, backend: RunningBackend
) -> tuple[str, list[dict[str, Any]]]:
    """A raw v0.3 client: 3 s of audio, its 3 finals received, then the socket closed
    without `stop`. Returns the resume secret and what it heard."""
    ws = await http.ws_connect(backend.url)
    await ws.send_str(valid_start("s"))
    heard = await messages_until(ws, "streaming")
    secret = heard[-1]["resume_token"]
    await send_audio(ws, range(0, 150))
    while sum(m["type"] == "asr_final" for m in heard) < 3:
        heard += await messages_until(ws, "asr_final")
    await ws.close()
    await until_true(lambda: len(backend.store.detached) == 1)
    return secret, heard


async def send_audio(ws: ClientWebSocketResponse, seqs: range) -> None:
    pcm = chirp(len(seqs) * 0.02).tobytes()
    for i, seq in enumerate(seqs):
        data = base64.b64encode(pcm[i * 640 : (i + 1) * 640]).decode()
        await ws.send_str(json.dumps({"type": "audio", "data": data, "seq": seq}))


@pytest.mark.parametrize(
    ("received", "replayed"),
    [
        ({"system": 1}, ["system-2", "system-3"]),  # two lost in flight
        ({"system": 3}, []),  # it has them all
        ({"system": 10**12}, []),  # a lying peer: nothing extra, and nothing breaks
        ("a count", ["system-1", "system-2", "system-3"]),  # not a count: as if absent
        (None, ["system-1", "system-2", "system-3"]),  # an older client: the lost socket's
    ],
)
async def test_the_backend_sends_again_the_finals_after_those_received(
    received: object, replayed: list[str]
) -> None:
    async with labelled_backend() as backend, ClientSession() as http:
        secret, _ = await three_finals_then_lost(http, backend)
        start = json.loads(valid_start("s", resume={"system": 150}, secret=secret))
        if received is not None:
            start["finals_received"] = received
        ws = await http.ws_connect(backend.url)
        await ws.send_str(json.dumps(start))
        heard = await messages_until(ws, "streaming")
        assert heard[-1]["resumed"] is True and heard[-1]["next_seq"] == {"system": 150}
        await send_audio(ws, range(150, 200))  # one more second: the session goes on
        heard = []
        while not heard or heard[-1].get("segment_id") != "system-4":
            heard += await messages_until(ws, "asr_final")
        await ws.close()

    assert [m["segment_id"] for m in heard if m["type"] == "asr_final"] == [*replayed, "system-4"]
