"""Sessions belong to whoever started them: a second client holding the deployment's token
and the victim's public session_id tries every path in, while the victim streams."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType

from backend.config import BackendConfig
from backend.record_path import session_dir
from backend.recording import recorded_pcm
from backend.server import running_backend
from backend.store import SessionStore
from pipeline.cli.exit_codes import ExitCode, for_report
from pipeline.session import Session
from pipeline.sources import from_samples
from tests.integration.fuzzing import valid_start
from tests.integration.test_session import chirp, fast
from tests.security.labeller import Labeller
from tests.security.polling import until_true
from tests.tokens import TOKEN

HEADERS = {"Authorization": f"Bearer {TOKEN}"}
SILENCE = json.dumps(
    {"type": "audio", "source": "system", "data": base64.b64encode(bytes(640)).decode()}
)


async def messages_until(ws: ClientWebSocketResponse, kind: str) -> list[dict[str, Any]]:
    """Every message up to and including the first of `kind` (a type or a status state)."""
    seen: list[dict[str, Any]] = []
    while True:
        msg = await ws.receive(timeout=10)
        if msg.type is not WSMsgType.TEXT:
            return seen
        body = json.loads(msg.data)
        seen.append(body)
        if kind in (body["type"], body.get("state")):
            return seen


async def intrude(http: ClientSession, url: str, session_id: str) -> list[dict[str, Any]]:
    """v0.2 start with the id, feeding it 2 s of silence and stopping it; v0.3 resumes with
    no secret and a wrong one; `stop` with the id from a session of one's own."""
    heard: list[dict[str, Any]] = []
    ws = await http.ws_connect(url, headers=HEADERS)
    await ws.send_str(valid_start(session_id, v03=False))
    heard += await messages_until(ws, "streaming")
    for _ in range(100):
        await ws.send_str(SILENCE)
    await ws.send_str(json.dumps({"type": "stop", "session_id": session_id}))
    heard += await messages_until(ws, "final_summary")
    await ws.close()
    for secret in ("", "not-the-secret"):
        ws = await http.ws_connect(url, headers=HEADERS)
        await ws.send_str(valid_start(session_id, resume={"system": 0}, secret=secret))
        heard += await messages_until(ws, "streaming")
        assert heard[-1]["resumed"] is False and heard[-1]["next_seq"] == {}
        await ws.close()
    ws = await http.ws_connect(url, headers=HEADERS)
    await ws.send_str(valid_start("the-intruders-own"))
    heard += await messages_until(ws, "streaming")
    await ws.send_str(json.dumps({"type": "stop", "session_id": session_id}))
    heard += await messages_until(ws, "error")
    assert heard[-1]["message"] == "stop needs the session_id of this session"
    await ws.close()
    return heard


async def test_the_session_id_alone_never_reaches_another_clients_session(
    record_dir: Path,
) -> None:
    config = BackendConfig(token=TOKEN, record_dir=record_dir)
    samples = chirp(4.0)
    async with running_backend(config, store=SessionStore(config, Labeller)) as backend:
        victim = Session(fast(backend.url, token=TOKEN), from_samples(samples))
        running = asyncio.get_running_loop().create_task(victim.run())
        key = (victim.ids.session_id, 0)
        await until_true(lambda: key in backend.store.sessions)
        async with ClientSession() as http:
            heard = await intrude(http, backend.url, victim.ids.session_id)
        assert not running.done()  # the intrusion happened while the victim streamed
        report = await asyncio.wait_for(running, 30)

    assert for_report(report) is ExitCode.OK and report.frames_lost == 0, report.reason
    assert [final.text for final in report.transcript] == ["sound"] * 4
    assert recorded_pcm(record_dir, victim.ids.session_id) == samples.tobytes()
    finals = [m for m in heard if m["type"] == "asr_final"]
    assert [m["text"] for m in finals] == ["silence", "silence"]  # its own audio, only
    summary = next(m for m in heard if m["type"] == "final_summary")
    assert [f["text"] for f in summary["json"]["transcript"]] == ["silence", "silence"]
    # the intruder's audio went to a directory of its own, the victim's is untouched
    intruder = session_dir(record_dir, victim.ids.session_id, 1) / "system.pcm"
    assert intruder.read_bytes() == bytes(100 * 640)
