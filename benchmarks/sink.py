"""A counting backend in its own process: just enough of PROTOCOL.md v0.3 for clients to flow.

It answers `connected`, `streaming` (v0.3 fields, so clients expect acks), acks every
`ack_every` frames, and on `stop` a last ack and a `final_summary` whose json carries the
frame count. Audio is counted, not decoded: the seq is read from the text (or the v2
binary header, offered to clients that ask with the `binary` capability), so the sink
costs little and lives on the other core, away from the client being measured.

With `arrivals=True` it also keeps, per session, `(seq, receive time)` of every frame
(wall clock, comparable across processes): frame `seq` of a real-time source is due
`(seq + 1) * 20 ms` after the source started, so the client can compute each frame's lag.

    with SinkProcess() as sink:
        ... stream to sink.url ...
        stats = await sink.stats()
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from benchmarks.measure import cpu_seconds, quiet
from pipeline.messages import encode_event
from pipeline.protocol import BINARY_SEQ_VERSION, FinalSummary, Status

PATH = "/ws/live-listener"
_AUDIO = '{"type":"audio"'
_SEQ = '"seq":'
_CONNECTED = encode_event(Status(state="connected"))


@dataclass
class SinkOptions:
    ack_every: int = 50
    arrivals: bool = False


@dataclass
class _Tally:
    frames: int = 0
    connections: int = 0
    arrivals: list[tuple[int, float]] = field(default_factory=list)


def seq_of(text: str) -> int:
    """The seq of an audio message as clients encode it (`..."seq":N,...`), or -1."""
    at = text.find(_SEQ)
    if at < 0:
        return -1
    at += len(_SEQ)
    return int(text[at : text.index(",", at)])


class Sink:
    """The counting app. One `_Tally` per session id."""

    def __init__(self, options: SinkOptions) -> None:
        self.options = options
        self.tallies: dict[str, _Tally] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(PATH, self.websocket)
        app.router.add_get("/stats", self.stats)
        app.router.add_post("/reset", self.reset)
        return app

    async def stats(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "cpu_s": cpu_seconds(),
                "sessions": {
                    sid: {"frames": t.frames, "connections": t.connections, "arrivals": t.arrivals}
                    for sid, t in self.tallies.items()
                },
            }
        )

    async def reset(self, _: web.Request) -> web.Response:
        self.tallies.clear()
        return web.json_response({})

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        await ws.send_str(_CONNECTED)
        tally = _Tally()
        arrivals = self.options.arrivals
        ack_every = self.options.ack_every
        source, last_seq, unacked = "system", -1, 0
        async for msg in ws:
            if msg.type is WSMsgType.BINARY:  # v2 binary audio: the seq is in the header
                audio = True
                last_seq = int.from_bytes(msg.data[4:8], "big")
            elif msg.type is WSMsgType.TEXT:
                text: str = msg.data
                audio = text.startswith(_AUDIO)
                if audio:
                    last_seq = seq_of(text)
            else:
                continue
            if audio:
                tally.frames += 1
                if arrivals:
                    tally.arrivals.append((last_seq, time.time()))
                unacked += 1
                if unacked >= ack_every:
                    unacked = 0
                    await ws.send_str(_ack(source, last_seq))
                continue
            body: dict[str, Any] = json.loads(text)
            if body.get("type") == "start":
                tally = self.tallies.setdefault(str(body.get("session_id")), _Tally())
                tally.connections += 1
                capabilities = body.get("capabilities") or ()
                streaming = Status(state="streaming")
                if "ack" in capabilities:
                    streaming = Status(
                        state="streaming",
                        resumed=False,
                        next_seq={},
                        # v2 binary audio (seq in the header) is welcome
                        binary=BINARY_SEQ_VERSION if "binary" in capabilities else None,
                    )
                await ws.send_str(encode_event(streaming))
            elif body.get("type") == "stop":
                if last_seq >= 0:
                    await ws.send_str(_ack(source, last_seq))
                summary = {"session_id": body.get("session_id"), "frames": tally.frames}
                await ws.send_str(encode_event(FinalSummary(json=summary)))
                await ws.close()
                break
        return ws


def _ack(source: str, seq: int) -> str:
    """`encode_event(Ack(source=source, seq=seq))`, spelled out: the sink's hot path."""
    return f'{{"type":"ack","source":"{source}","seq":{seq}}}'


async def _serve(conn: Connection, options: SinkOptions) -> None:
    runner = web.AppRunner(Sink(options).app(), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    conn.send(server.sockets[0].getsockname()[1])
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to end
    await runner.cleanup()


def _main(conn: Connection, options: SinkOptions) -> None:
    quiet()
    asyncio.run(_serve(conn, options))


class SinkProcess:
    """The sink in a child process (spawned: no inherited event loop), for a `with` block."""

    def __init__(self, options: SinkOptions | None = None) -> None:
        self.options = options or SinkOptions()
        self.port = 0
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None

    def __enter__(self) -> SinkProcess:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self._process = context.Process(target=_main, args=(theirs, self.options), daemon=True)
        self._process.start()
        if not ours.poll(30):
            raise RuntimeError("the sink process did not start")
        self.port = ours.recv()
        self._conn = ours
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._process is not None and self._conn is not None
        self._conn.send(None)
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    @property
    def pid(self) -> int:
        assert self._process is not None and self._process.pid is not None
        return self._process.pid

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{PATH}"

    async def stats(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}/stats"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            body: dict[str, Any] = await response.json()
            return body

    async def reset(self) -> None:
        url = f"http://127.0.0.1:{self.port}/reset"
        async with aiohttp.ClientSession() as http, http.post(url) as response:
            response.raise_for_status()
