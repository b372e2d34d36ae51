"""The embedded backend: an aiohttp.web app speaking PROTOCOL.md (v0.2, and v0.3 acks/resume).

app = create_app(BackendConfig(token="s3cret"))
web.run_app(app, port=8765)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from concurrent.futures import Executor
from typing import Any

from aiohttp import WSMsgType, web
from loguru import logger

from backend.admission import authorized, presented_token
from backend.asr import RecognizerFactory, recognizer_factory
from backend.config import BackendConfig
from backend.rate_limit import TokenBucket
from backend.recording import Recording
from backend.session_state import StoreUnavailable, session_state
from backend.store import BackendSession, SessionStore
from backend.stream import SourceStream
from pipeline.protocol import (
    BINARY_SEQ_VERSION,
    AudioPayload,
    decode_audio_binary,
    decode_audio_json,
)

PATH = "/ws/live-listener"
UNAUTHORIZED = "Unauthorized websocket connection"
AT_CAPACITY = "Server at capacity, please try again later"
TOO_MANY_INVALID = "Too many invalid messages (over {rate:g}/s): closing"
SLOWED = "Over {rate:g} messages/s: reading slowed"
SLOWED_NOTICE_EVERY = 5.0  # seconds between two "reading slowed" warnings
NO_START = "No start within {timeout:g} s: closing"
TOO_MUCH_AUDIO = "audio message over {limit} bytes of PCM: ignored"
STORE: web.AppKey[SessionStore] = web.AppKey("store", SessionStore)
CONFIG: web.AppKey[BackendConfig] = web.AppKey("config", BackendConfig)
OWNS_STORE: web.AppKey[bool] = web.AppKey("owns_store", bool)  # its sessions end with it


def create_app(
    config: BackendConfig | None = None,
    *,
    store: SessionStore | None = None,
    recognizers: RecognizerFactory | None = None,
    executor: Executor | None = None,
) -> web.Application:
    """The backend app. Pass an existing `store` to keep sessions across a restart."""
    config = config or BackendConfig()
    app = web.Application()
    app[CONFIG] = config
    app[STORE] = store or SessionStore(
        config,
        recognizers or recognizer_factory(config.asr, max_decoders=config.asr_decoders),
        executor,
        session_state(config.store, config.resume_window),
    )
    app[CLIENTS] = set[ClientConnection]()
    app.router.add_get(PATH, _websocket)
    app.router.add_get("/healthz", _health)
    app[OWNS_STORE] = store is None
    app.on_shutdown.append(_drain_clients)
    if store is None:
        app.on_shutdown.append(_close_store)
    return app


async def _drain_clients(app: web.Application) -> None:
    """A graceful shutdown: every client gets the finals of what was acknowledged, then 1012."""
    held: set[ClientConnection] = app[CLIENTS]
    clients = list(held)
    if clients:
        logger.info("shutting down: draining {} connection(s)", len(clients))
    # A store that outlives this app keeps its sessions (and their recognisers) for resume:
    # their utterances stay open, so a sentence spoken across the restart is not cut.
    ending = app[OWNS_STORE]
    await asyncio.gather(*(client.drain(ending) for client in clients), return_exceptions=True)


async def _close_store(app: web.Application) -> None:
    await app[STORE].close()


async def _health(request: web.Request) -> web.Response:
    store = request.app[STORE]
    return web.json_response({"sessions": len(store.sessions), "connections": store.connections})


async def _websocket(request: web.Request) -> web.WebSocketResponse:
    config, store = request.app[CONFIG], request.app[STORE]
    ws = web.WebSocketResponse(heartbeat=config.heartbeat, max_msg_size=config.max_message_bytes)
    await ws.prepare(request)
    token = presented_token(request)
    if not authorized(config, token):
        await ws.send_json({"type": "status", "state": "error", "message": UNAUTHORIZED})
        await ws.close(code=1008, message=b"unauthorized")
        return ws
    if store.connections >= config.max_sessions:
        await ws.send_json({"type": "status", "state": "error", "message": AT_CAPACITY})
        await ws.close(code=1013, message=b"at capacity")
        return ws
    store.connections += 1
    client = ClientConnection(ws, store, config)
    request.app[CLIENTS].add(client)
    try:
        await ws.send_json({"type": "status", "state": "connected"})
        await client.run()
    finally:
        request.app[CLIENTS].discard(client)
        store.connections -= 1
    return ws


class ClientConnection:
    """One client socket: `start`, audio, acks, metrics, `stop`."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        store: SessionStore,
        config: BackendConfig,
    ) -> None:
        self.ws, self.store, self.config = ws, store, config
        self.session: BackendSession | None = None
        self.v03 = False
        self.binary_seq = False  # v0.3 client offered binary audio with seq (we take it)
        self.stopped = False
        self.draining = False  # the backend is shutting down: nothing more is taken
        self.stopping: asyncio.Task[None] | None = None  # flush + summary, while we keep reading
        self.outgoing: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []
        self.writer = asyncio.get_running_loop().create_task(self._write())
        self.log = logger.bind(peer="client")
        self.rate = TokenBucket(config.max_message_rate, config.message_burst)
        self.invalid = TokenBucket(config.max_invalid_rate, config.invalid_burst)
        self.cut_off = False
        self.slowed_notice_at: float | None = None
        self.full_stream: SourceStream | None = None  # its queue is full: stop reading

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message for the socket's single writer, which keeps their order."""
        self.outgoing.put_nowait(message)

    async def _write(self) -> None:
        while (message := await self.outgoing.get()) is not None:
            if self.ws.closed:
                continue
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(json.dumps(message, separators=(",", ":")))

    async def _flush(self) -> None:
        """Send everything queued, then stop the writer."""
        self.outgoing.put_nowait(None)
        await self.writer

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._spawn(self._start_deadline())
        try:
            async for msg in self.ws:
                wait = self.rate.take(loop.time())
                if wait > 0:
                    self._slowed(loop.time())
                    await asyncio.sleep(wait)
                if msg.type is WSMsgType.TEXT:
                    done = await self._on_text(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    done = self._on_audio_binary(msg.data)
                else:  # ERROR: aiohttp has closed the socket (e.g. 1009, a message too big)
                    self.log.info("connection error: {}", self.ws.exception())
                    done = True
                if done or self.cut_off:
                    break
                if self.full_stream is not None:
                    await self._wait_for_room()
            if self.cut_off:
                await self._cut_off()
        finally:
            if self.stopping is not None:  # it closes the socket itself; let it finish
                await asyncio.gather(self.stopping, return_exceptions=True)
            for task in [*self.tasks, self.writer]:
                task.cancel()
            await asyncio.gather(*self.tasks, self.writer, return_exceptions=True)
            if self.session is not None and not self.stopped:
                self.store.lost(self.session, self)

    async def _start_deadline(self) -> None:
        """A socket that sends no `start` in time holds a slot for nothing: close it."""
        await asyncio.sleep(self.config.start_timeout)
        if self.session is None and not self.ws.closed and not self.draining:
            message = NO_START.format(timeout=self.config.start_timeout)
            self.log.info("{}", message)
            self.send({"type": "status", "state": "error", "message": message})
            await self._flush()
            await self.ws.close(code=1008, message=b"no start")

    async def drain(self, ending: bool = True) -> None:
        """Stop taking audio, transcribe what was acknowledged, send it, close with 1012.

        Frames not yet acknowledged are the client's: it resends them to the next backend.
        `ending`: the session ends with this process, so its utterances are closed; else
        (v0.3, a store that outlives the process) they stay open for the resumed session.
        Bounded by `shutdown_grace`; past it the connection closes with what it has.
        """
        self.draining = True
        session = self.session
        if self.stopping is not None or self.ws.closed:
            return
        if session is not None and session.owner is self:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    self._transcribe_acked(session, ending), self.config.shutdown_grace
                )
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._flush(), self.config.shutdown_grace)
        await self.ws.close(code=1012, message=b"server restarting")

    async def _transcribe_acked(self, session: BackendSession, ending: bool) -> None:
        if self.v03:  # queued frames were never acked: the client keeps them, resends them
            for source, stream in session.streams.items():
                stream.forget_unacked()
                self._ack(source)
        # a v0.2 client cannot resend: everything it delivered is transcribed; a session that
        # outlives this process keeps its utterances open for the resumed session
        if ending or not self.v03:
            await asyncio.gather(*(stream.finish() for stream in session.streams.values()))
        await session.state.settled()

    def _slowed(self, now: float) -> None:
        """Over the message rate: reading slows (see BackendConfig); say so now and then."""
        if self.slowed_notice_at is None or now - self.slowed_notice_at >= SLOWED_NOTICE_EVERY:
            self.slowed_notice_at = now
            message = SLOWED.format(rate=self.config.max_message_rate)
            self.log.info("{}", message)
            self.send({"type": "status", "state": "warning", "message": message})

    def _refuse(self, reason: str | None) -> None:
        """An invalid message: answer `reason` (None: ignore it quietly). A client that
        keeps sending them is cut off once `max_invalid_rate` is spent."""
        if self.invalid.take(asyncio.get_running_loop().time()) > 0:
            self.cut_off = True
        elif reason is not None:
            self.send({"type": "error", "message": reason})

    async def _cut_off(self) -> None:
        message = TOO_MANY_INVALID.format(rate=self.config.max_invalid_rate)
        self.log.warning("{}", message)
        self.send({"type": "status", "state": "error", "message": message})
        await self._flush()
        await self.ws.close(code=1008, message=b"too many invalid messages")

    async def _on_text(self, text: str) -> bool:
        """Handle one message; True when the connection is done."""
        try:
            body = json.loads(text)
        except (ValueError, RecursionError):
            self._refuse("not JSON: ignored")
            return False
        if not isinstance(body, dict):
            self._refuse("not a JSON object: ignored")
            return False
        kind = body.get("type")
        if kind == "audio":
            self._on_audio_json(body)
        elif kind == "start":
            return await self._on_start(body)
        elif kind == "stop":
            return await self._on_stop(body)
        else:
            self._refuse(None)  # unknown types are ignored (PROTOCOL.md), within limits
        return False

    # -- start ----------------------------------------------------------------------

    async def _on_start(self, body: dict[str, Any]) -> bool:
        if self.session is not None:  # v0.2 acknowledges a second start again
            self._refuse(None)  # but it is a client's mistake, counted as one
            if not self.cut_off:
                self.send(self._streaming_status(self.session, resumed=True))
            return False
        problem = _format_problem(body)
        if problem is not None:
            await self._reject(f"Unsupported audio format: {problem}")
            return True
        session_id = body.get("session_id")
        if not isinstance(session_id, str) or not session_id or len(session_id) > 128:
            await self._reject("start needs a session_id")
            return True
        capabilities = body.get("capabilities")
        self.v03 = (
            self.config.protocol == "0.3"
            and isinstance(capabilities, list)
            and "ack" in capabilities
        )
        wants_resume = self.v03 and "resume" in capabilities  # type: ignore[operator]
        self.binary_seq = self.v03 and "binary" in capabilities  # type: ignore[operator]
        try:
            opened = await self.store.open_shared(
                session_id, body.get("resume_token"), wants_resume
            )
        except StoreUnavailable as exc:  # retryable: the client tries again later
            self.log.warning("session store unavailable: {}", exc)
            self.send({"type": "status", "state": "error", "message": AT_CAPACITY})
            await self._flush()
            await self.ws.close(code=1013, message=b"session store unavailable")
            return True
        session = self.session = opened.session
        previous = opened.superseded or session.owner
        replay = session.attach(self, self.send)
        if isinstance(previous, ClientConnection) and previous is not self:
            previous.supersede()
        self.send(self._streaming_status(session, resumed=opened.resumed))
        for final in replay if opened.resumed else ():
            self.send(final)
        self._spawn(self._tick())
        return False

    def _streaming_status(self, session: BackendSession, *, resumed: bool) -> dict[str, Any]:
        status: dict[str, Any] = {"type": "status", "state": "streaming"}
        if self.v03:
            status["resumed"] = resumed
            status["next_seq"] = {s: stream.next_seq for s, stream in session.streams.items()}
            if self.binary_seq:
                status["binary"] = BINARY_SEQ_VERSION
            secret = session.hand_out_secret() if session.resumable and not resumed else None
            if secret is not None:
                status["resume_token"] = secret
        return status

    async def _reject(self, message: str) -> None:
        self.send({"type": "error", "message": message})
        await self._flush()
        await self.ws.close(code=1000)

    def supersede(self) -> None:
        """A resumed connection took this session over: this socket is stale."""
        self.log.info("superseded by a resumed connection")
        self._spawn(self.ws.close(code=1000, message=b"superseded"))

    def _spawn(self, coro: Any) -> None:
        self.tasks.append(asyncio.get_running_loop().create_task(coro))

    # -- audio ----------------------------------------------------------------------

    def _on_audio_json(self, body: dict[str, Any]) -> None:
        try:
            payload = decode_audio_json(body)
        except ValueError as exc:
            self._refuse(f"bad audio ignored: {exc}")
            return
        self._accept(payload)

    def _on_audio_binary(self, data: bytes) -> bool:
        try:
            payload = decode_audio_binary(data)
        except ValueError as exc:
            self._refuse(f"bad audio ignored: {exc}")
            return False
        self._accept(payload)
        return False

    def _accept(self, payload: AudioPayload) -> None:
        if self.session is None:
            self._refuse("audio before start: ignored")
            return
        if not payload.pcm:
            self._refuse("empty audio ignored")
            return
        if self.stopped:
            self._refuse(None)  # nothing follows `stop`
            return
        if self.draining:
            return  # not taken, not acknowledged: the client sends it to the next backend
        if len(payload.pcm) > self.config.max_audio_bytes:
            self._refuse(TOO_MUCH_AUDIO.format(limit=self.config.max_audio_bytes))
            return
        source = "mic" if payload.source == "microphone" else payload.source
        stream = self.session.stream(source)
        if stream.accept(payload.pcm, payload.seq if self.v03 else None):
            self.session.state.frame(source, stream.next_seq - 1, payload.pcm)
        if stream.full and not stream.drop_when_full:
            self.full_stream = stream
        if self.v03 and stream.frames_since_ack >= self.config.ack_every:
            self._ack(stream.source)

    async def _wait_for_room(self) -> None:
        """A source's recogniser queue is full: read nothing more from this socket until
        it has room (TCP holds the client back; nothing is dropped, acks wait)."""
        stream, self.full_stream = self.full_stream, None
        assert stream is not None
        await stream.wait_for_room()

    def _ack(self, source: str) -> None:
        assert self.session is not None
        stream = self.session.streams[source]
        # not beyond what the recogniser took (v0.3 flow control), nor what is kept
        seq = min(stream.ackable_seq, self.session.state.persisted(source))
        stream.frames_since_ack = 0
        if seq > stream.acked_seq:
            stream.acked_seq = seq
            self.send({"type": "ack", "source": source, "seq": seq})

    async def _tick(self) -> None:
        """Acks at `ack_interval`, metrics and backpressure at `metrics_interval`."""
        assert self.session is not None
        session = self.session
        loop = asyncio.get_running_loop()
        next_metrics = loop.time() + self.config.metrics_interval
        seen: dict[str, int] = {}
        while not self.ws.closed:
            await asyncio.sleep(self.config.ack_interval)
            if self.v03:
                for source in list(session.streams):
                    self._ack(source)
            if loop.time() < next_metrics:
                continue
            next_metrics = loop.time() + self.config.metrics_interval
            for source, stream in list(session.streams.items()):
                if stream.received_bytes == seen.get(source):
                    continue  # metrics only while audio flows
                seen[source] = stream.received_bytes
                overloaded = stream.overloaded
                metrics = stream.metrics()
                self.send(metrics)
                if overloaded:
                    self.send(
                        {
                            "type": "status",
                            "state": "backpressure",
                            "message": f"recogniser behind on {source}",
                            "dropped_frames": metrics["dropped_total"],
                        }
                    )

    # -- stop -----------------------------------------------------------------------

    async def _on_stop(self, body: dict[str, Any]) -> bool:
        session = self.session
        if self.stopped:
            return False
        if session is None or body.get("session_id") != session.session_id:
            self._refuse("stop needs the session_id of this session")
            return False
        self.stopped = True
        # Flushing the recognisers can take seconds: do it aside and keep reading the
        # socket, which is what answers the client's heartbeat pings.
        self.stopping = asyncio.get_running_loop().create_task(self._finish(session))
        return False

    async def _finish(self, session: BackendSession) -> None:
        """Flush every recogniser, send `final_summary`, close."""
        try:
            await self._summarise(session)
        except Exception as exc:
            session.log.opt(exception=exc).error("stop failed")
            self.send({"type": "status", "state": "error", "message": "stop failed"})
            await self._flush()
            session.detach(self)
            self.store.discard(session)
            await self.ws.close(code=1011)

    async def _summarise(self, session: BackendSession) -> None:
        await asyncio.gather(*(stream.finish() for stream in session.streams.values()))
        await session.state.settled()
        if self.v03:
            for source in session.streams:
                self._ack(source)
        transcript = session.transcript()
        self.send(
            {
                "type": "final_summary",
                "markdown": _markdown(transcript),
                "json": {
                    "session_id": session.session_id,
                    "transcript": transcript,
                    "sources": {
                        source: {
                            "received_s": round(stream.received_bytes / 32_000, 3),
                            "recognized_s": round(stream.handed_seconds, 3),
                            "dropped_frames": stream.dropped_total,
                            "recognizer": stream.recognizing,
                            **_recorded(stream.recording),
                            "duplicates": stream.duplicates,
                            "gaps": stream.gaps,
                        }
                        for source, stream in session.streams.items()
                    },
                },
            }
        )
        await self._flush()
        session.detach(self)
        await session.state.end()
        self.store.discard(session)
        await self.ws.close(code=1000)


def _recorded(recording: Recording | None) -> dict[str, Any]:
    """Whether the source's audio is on disk, and if its recording stopped, why."""
    failed = None if recording is None else recording.failed
    return {"recorded": recording is not None and failed is None, "recording_error": failed}


CLIENTS: web.AppKey[set[ClientConnection]] = web.AppKey("clients", set[ClientConnection])


def _format_problem(body: dict[str, Any]) -> str | None:
    rate, fmt, channels = body.get("sample_rate"), body.get("format"), body.get("channels")
    integers = type(rate) is int and type(channels) is int  # not 16000.0, not true
    if not integers or (rate, fmt, channels) != (16_000, "pcm_s16le", 1):
        got = ", ".join(_short(value) for value in (rate, fmt, channels))
        return f"got {got}; need sample_rate 16000, format pcm_s16le, channels 1"
    return None


def _short(value: object, limit: int = 40) -> str:
    """A client's value, quoted in a reply without echoing a huge one back."""
    try:
        text = repr(value)
    except RecursionError:
        return "<deeply nested value>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _markdown(transcript: list[dict[str, Any]]) -> str:
    if not transcript:
        return "# Transcript\n\n_(no speech recognised)_\n"
    lines = ["# Transcript", ""]
    for final in transcript:
        lines.append(f"- **[{_clock(final['t0'])}] {final['source']}:** {final['text']}")
    return "\n".join(lines) + "\n"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"
