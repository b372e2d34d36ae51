"""Every resource a client can hold is bounded: a socket that never sends `start`, a
connection that never finishes its HTTP request, an audio message too large, sessions kept
for resume. Each is cut off at its limit while a legitimate client streams beside it and
loses nothing. Waits derive from the limits under test."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

from aiohttp import ClientSession, WSMsgType

from backend.app import NO_START, TOO_MUCH_AUDIO
from backend.asr import NullRecognizer
from backend.config import BackendConfig
from backend.recording import recorded_pcm
from backend.server import running_backend
from backend.store import SessionStore
from backend.stream import SourceStream
from pipeline.cli.exit_codes import ExitCode, for_report
from pipeline.session import Session
from pipeline.sources import from_samples
from tests.asr.slowed import SlowedRecognizers
from tests.conftest import BackendFactory
from tests.integration.fuzzing import valid_start
from tests.integration.test_session import chirp, fast
from tests.security.polling import until_true
from tests.security.test_ownership import messages_until

LIMIT = 0.5  # seconds: the start and handshake limits under test
HALF_REQUEST = b"GET /ws/live-listener HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"


async def streams_beside(url: str, record_dir: Path, attack: Callable[[], object]) -> None:
    """A legitimate client streams 2 s in real time while `attack()` runs; it loses nothing."""
    samples = chirp(2.0)
    session = Session(fast(url), from_samples(samples))
    running = asyncio.get_running_loop().create_task(session.run())
    result = attack()
    if asyncio.iscoroutine(result):
        await result
    report = await asyncio.wait_for(running, 30)
    assert for_report(report) is ExitCode.OK and report.frames_lost == 0, report.reason
    assert recorded_pcm(record_dir, session.ids.session_id) == samples.tobytes()


async def test_sockets_that_never_send_start_are_closed_at_the_start_limit(
    make_backend: BackendFactory, record_dir: Path
) -> None:
    async with make_backend(start_timeout=LIMIT, max_sessions=17) as backend:
        async with ClientSession() as http:

            async def idle() -> None:
                sockets = [await http.ws_connect(backend.url) for _ in range(16)]
                for ws in sockets:
                    replies = await messages_until(ws, "error")
                    assert replies[-1]["message"] == NO_START.format(timeout=LIMIT)
                    assert (await ws.receive(timeout=10)).type is WSMsgType.CLOSE
                    assert ws.close_code == 1008

            await streams_beside(backend.url, record_dir, idle)
        assert backend.store.connections == 0


async def test_half_sent_upgrades_are_closed_at_the_handshake_limit(
    make_backend: BackendFactory, record_dir: Path
) -> None:
    async with make_backend(handshake_timeout=LIMIT) as backend:
        held: list[asyncio.StreamWriter] = []

        async def half_sent() -> None:
            readers = []
            for _ in range(150):
                reader, writer = await asyncio.open_connection(backend.host, backend.port)
                writer.write(HALF_REQUEST)
                readers.append(reader)
                held.append(writer)
            # each is closed by the server: a read returns end-of-file
            ends = await asyncio.gather(*(asyncio.wait_for(r.read(), 10) for r in readers))
            assert ends == [b""] * 150

        try:
            # the legitimate client outlives the limit: it applies to the request, not the socket
            await streams_beside(backend.url, record_dir, half_sent)
        finally:
            for writer in held:
                writer.close()


async def test_an_oversized_audio_message_is_refused_and_not_recorded(
    make_backend: BackendFactory, record_dir: Path
) -> None:
    async with make_backend(max_audio_bytes=6400) as backend, ClientSession() as http:
        ws = await http.ws_connect(backend.url)
        await ws.send_str(valid_start("big-sender"))
        await messages_until(ws, "streaming")

        async def oversized() -> None:
            for size in (6400, 6402):
                data = base64.b64encode(bytes(size)).decode()
                await ws.send_str(json.dumps({"type": "audio", "data": data, "seq": 0}))
            replies = await messages_until(ws, "error")
            assert replies[-1]["message"] == TOO_MUCH_AUDIO.format(limit=6400)

        await streams_beside(backend.url, record_dir, oversized)
        await ws.close()
    assert recorded_pcm(record_dir, "big-sender") == bytes(6400)


async def test_detached_sessions_beyond_the_limit_end_oldest_first(
    make_backend: BackendFactory, record_dir: Path
) -> None:
    async with make_backend(max_detached=3) as backend, ClientSession() as http:

        async def vanishing() -> None:
            for number in range(10):
                ws = await http.ws_connect(backend.url)
                await ws.send_str(valid_start(f"gone-{number}"))
                await messages_until(ws, "streaming")
                await ws.close()
            await until_true(lambda: backend.store.evicted >= 7)

        await streams_beside(backend.url, record_dir, vanishing)
        assert [key[0] for key in backend.store.detached] == ["gone-7", "gone-8", "gone-9"]
        assert backend.store.evicted == 7


async def test_a_source_queue_is_bounded_in_bytes_as_well_as_frames() -> None:
    """Accepted in one loop tick, before the recogniser takes anything: the queue alone.
    (In v0.3 the connection waits for `full` to clear before reading the next frame.)"""
    streams = [
        SourceStream(
            "system",
            NullRecognizer(),
            lambda message: None,
            recording=None,
            executor=None,
            queue_seconds=1.0,
            unique_ids=True,
            drop_when_full=True,  # the legacy v0.2 mode; v0.3 stops reading instead
        )
        for _ in range(2)
    ]
    small, large = streams
    assert [small.accept(bytes(640), None) for _ in range(51)] == [True] * 51
    assert (small.queue_depth, small.queued_bytes, small.dropped_total) == (50, 32_000, 1)
    assert [large.accept(bytes(32_000), None) for _ in range(3)] == [True] * 3
    assert (large.queue_depth, large.queued_bytes, large.dropped_total) == (1, 32_000, 2)
    for stream in streams:
        await stream.close()


async def received(store: SessionStore, name: str, frames: int) -> None:
    def done() -> bool:
        session = store.sessions.get((name, 0))
        stream = session.streams.get("system") if session is not None else None
        return stream is not None and stream.next_seq == frames

    await until_true(done)


def settled(store: SessionStore, gone: int) -> bool:
    """`gone` sessions lost their socket: each is detached or was evicted."""
    return len(store.detached) + store.evicted == gone


async def test_detached_sessions_beyond_the_byte_limit_end_oldest_first(
    record_dir: Path,
) -> None:
    """A recogniser 4x slower than real time keeps most of each 3 s sent in the queue: one
    detached session holds 2.48-3 s (79-96 kB), two cannot fit in 120 kB."""
    config = BackendConfig(record_dir=record_dir, max_detached_bytes=120_000)
    store = SessionStore(config, SlowedRecognizers(NullRecognizer, 4.0))
    frame = base64.b64encode(bytes(640)).decode()
    async with running_backend(config, store=store) as backend, ClientSession() as http:
        for number, name in enumerate(("older", "newer")):
            ws = await http.ws_connect(backend.url)
            await ws.send_str(valid_start(name))
            await messages_until(ws, "streaming")
            for seq in range(150):
                await ws.send_str(json.dumps({"type": "audio", "data": frame, "seq": seq}))
            await received(store, name, 150)
            await ws.close()
            await until_true(partial(settled, store, number + 1))
        assert [key[0] for key in store.detached] == ["newer"] and store.evicted == 1
