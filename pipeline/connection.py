"""The connection: a cold observable, one aiohttp WebSocket per subscription.

Subscribing opens a socket, waits for the backend's `connected`, sends `start` exactly
once, and when the backend says `streaming` writes the outbox's frames in order. It emits
lifecycle events (`Connecting`, `Connected`, `Streaming`) and the backend's typed events;
it completes after the final summary of a stopped session and errors with a typed
exception (pipeline.errors) when the socket ends any other way. Disposal closes the socket.

Delivery is confirmed by v0.3 acks, or — against a v0.2 backend, which sends none — by
ping barriers: a PONG for a PING written after frame n proves the backend read frame n.
When barriers stop coming back for longer than the bound of `BarrierWatch`, the writer
stops: the frames wait for the next connection instead of going into a dead socket.

An ack or a `next_seq` beyond the last frame written is a protocol violation: nothing is
released, and the connection fails (retried) with `errors.ProtocolViolation`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import reactivex
from loguru import logger
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from pipeline import errors
from pipeline.config import SessionConfig
from pipeline.ids import SessionIds, new_id
from pipeline.outbox import Outbox
from pipeline.protocol import (
    CAPABILITIES,
    Ack,
    AsrFinal,
    AsrPartial,
    ErrorMessage,
    FinalSummary,
    Malformed,
    Segment,
    ServerEvent,
    Start,
    Status,
    Stop,
    Unknown,
    decode_event,
    encode_audio_binary,
    encode_audio_json,
    encode_start,
    encode_stop,
)
from pipeline.redaction import Secret, redact
from pipeline.stall import BarrierWatch
from pipeline.status import Connected, Connecting, StatusEvent, Streaming

LinkEvent = StatusEvent | ServerEvent
BARRIER_EVERY = 1  # frames per ping barrier against a v0.2 backend: each frame is confirmed
_YIELD_EVERY = 64  # frames written between yields to the loop


@dataclass
class LinkMemo:
    """What one connection hands to the next within a session."""

    token: Secret | None = None
    streamed: bool = False  # some connection of this session has reached `streaming`
    refreshes_left: int = 1  # token-provider retries allowed before the next `streaming`
    resume_token: Secret | None = None  # the session's private secret, from the backend
    # The last socket closed with 1012: the backend shut down gracefully, having transcribed
    # exactly what it acknowledged, so every frame still held is owed to the next backend.
    restarted: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


def auth_headers(token: Secret | None) -> dict[str, str]:
    if token is None:
        return {}
    value = token.reveal()
    return {"Authorization": f"Bearer {value}", "x-echopanel-token": value}


def connect(
    config: SessionConfig,
    ids: SessionIds,
    outbox: Outbox,
    *,
    clock: Callable[[], float],
    memo: LinkMemo | None = None,
) -> Observable[LinkEvent]:
    """A cold observable of one connection's events (see the module docstring)."""
    shared = memo or LinkMemo(token=config.secret)

    def subscribe(
        observer: abc.ObserverBase[LinkEvent], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        link = _Link(config, ids, outbox, clock, shared, observer)
        task = asyncio.get_running_loop().create_task(link.run())
        shared.tasks.add(task)
        task.add_done_callback(shared.tasks.discard)
        return Disposable(link.dispose)

    return reactivex.create(subscribe)


class Cork:
    """TCP_CORK around a backlog (Linux): many small messages leave in full segments.

    Writing a backlog of 20 ms frames costs a system call each; corked, the kernel only
    queues them and transmits when released, which makes each call far cheaper. Released
    before every yield to the loop and whenever the writer runs dry, so live audio is
    never held back.
    """

    def __init__(self, sock: Any) -> None:
        option = getattr(socket, "TCP_CORK", None)
        self._set = (
            (lambda on: sock.setsockopt(socket.IPPROTO_TCP, option, on))
            if option is not None and sock is not None and sock.family != socket.AF_UNIX
            else None
        )
        self._held = False

    def hold(self) -> None:
        if not self._held and self._set is not None:
            self._held = True
            with contextlib.suppress(OSError):
                self._set(1)

    def release(self) -> None:
        if self._held and self._set is not None:
            self._held = False
            with contextlib.suppress(OSError):
                self._set(0)


class _Link:
    """One socket's life. All methods run on the event loop."""

    def __init__(
        self,
        config: SessionConfig,
        ids: SessionIds,
        outbox: Outbox,
        clock: Callable[[], float],
        memo: LinkMemo,
        observer: abc.ObserverBase[LinkEvent],
    ) -> None:
        self.config, self.ids, self.outbox, self.clock = config, ids, outbox, clock
        self.memo, self.observer = memo, observer
        self.connection_id = new_id()
        self.log = logger.bind(
            session_id=ids.session_id, attempt_id=ids.attempt_id, connection_id=self.connection_id
        )
        self.disposed = False
        self.task: asyncio.Task[None] | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.offered_v03 = config.protocol != "0.2"
        self.protocol: str | None = None
        self.start_sent = self.stop_sent = False
        self.summary: FinalSummary | None = None
        self.pending: errors.LiveListenerError | None = None
        self.writer: asyncio.Task[None] | None = None
        self.writer_error: BaseException | None = None
        self.wake = asyncio.Event()
        self.barriers: dict[int, dict[str, int]] = {}
        self.barrier_count = 0
        self.watch = BarrierWatch()
        self.stall_logged = False
        self.unlisten: Callable[[], None] | None = None

    # -- lifecycle ------------------------------------------------------------------

    def dispose(self) -> None:
        self.disposed = True
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def emit(self, event: LinkEvent) -> None:
        if not self.disposed:
            self.observer.on_next(event)

    async def run(self) -> None:
        self.task = asyncio.current_task()
        self.emit(Connecting(at=self.clock(), connection_id=self.connection_id))
        failure: Exception | None = None
        try:
            await self._run()
        except asyncio.CancelledError:
            if not self.disposed:
                raise
        except Exception as exc:
            failure = await self._typed(exc)
        finally:
            await self._teardown()
        if self.disposed:
            return
        if failure is not None:
            self.log.info("connection ended: {}", failure)
            self.observer.on_error(failure)
        else:
            self.observer.on_completed()

    async def _typed(self, exc: Exception) -> Exception:
        failure = errors.from_exception(exc, streamed=self.memo.streamed)
        provider = self.config.token_provider
        if isinstance(failure, errors.Unauthorized) and provider and self.memo.refreshes_left:
            self.memo.refreshes_left -= 1
            try:
                fresh = await provider()
            except Exception as provider_error:  # a broken provider must not hide the cause
                self.log.warning("token provider failed: {}", type(provider_error).__name__)
                fresh = None
            current = self.memo.token.reveal() if self.memo.token else None
            if fresh and fresh != current:
                self.memo.token = Secret(fresh)
                return errors.Unauthorized(
                    "unauthorized; retrying with a new token", refreshed=True
                )
        return failure

    async def _teardown(self) -> None:
        if self.unlisten is not None:
            self.unlisten()
        if self.writer is not None:
            self.writer.cancel()
            with contextlib.suppress(BaseException):
                await self.writer
        self.outbox.connection_lost()
        if self.ws is not None and not self.ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), self.config.close_timeout)

    # -- the socket -----------------------------------------------------------------

    async def _run(self) -> None:
        url = self.config.url
        ssl: Any = self.config.verify_tls if url.startswith("wss:") else True
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.config.connect_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            self.ws = await asyncio.wait_for(
                http.ws_connect(
                    url,
                    headers=auth_headers(self.memo.token),
                    heartbeat=self.config.heartbeat,
                    autoping=False,
                    max_msg_size=self.config.max_message_bytes,
                    ssl=ssl,
                    timeout=aiohttp.ClientWSTimeout(ws_close=self.config.close_timeout),
                ),
                self.config.connect_timeout,
            )
            self.log.debug("socket open to {}", url)
            await self._read(self.ws)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        deadline = asyncio.get_running_loop().time() + self.config.connect_timeout
        peer_code: int | None = None
        while True:
            timeout = None
            if self.protocol is None:  # the handshake must finish in time
                timeout = deadline - asyncio.get_running_loop().time()
                if timeout <= 0:
                    raise errors.ConnectionLost("no `streaming` from the backend in time")
            msg = await ws.receive(timeout=timeout)
            if msg.type is aiohttp.WSMsgType.TEXT:
                await self._on_event(ws, decode_event(msg.data))
            elif msg.type is aiohttp.WSMsgType.BINARY:
                self.log.warning(
                    "skipped a binary frame from the backend ({} bytes)", len(msg.data)
                )
            elif msg.type is aiohttp.WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type is aiohttp.WSMsgType.PONG:
                self._on_pong(msg.data)
            elif msg.type is aiohttp.WSMsgType.ERROR:
                raise errors.from_exception(msg.data)
            else:  # CLOSE, CLOSING, CLOSED
                if msg.type is aiohttp.WSMsgType.CLOSE:
                    # the backend's own code: aiohttp reports 1006 instead when our reply
                    # cannot be written because the backend already closed (seen over TLS)
                    peer_code = msg.data
                break
        if self.writer_error is not None:
            raise errors.from_exception(
                self.writer_error if isinstance(self.writer_error, Exception) else OSError()
            )
        code = peer_code or ws.close_code
        failure = errors.settle(self.pending, errors.from_close(code, stopping=self.stop_sent))
        # a graceful restart (1012) owes the next backend everything still held
        self.memo.restarted = code == errors.RESTART and failure is not self.pending
        if failure is not None:
            raise failure

    async def _on_event(self, ws: aiohttp.ClientWebSocketResponse, event: ServerEvent) -> None:
        if isinstance(event, Status | ErrorMessage) and event.message:
            cleaned = redact(event.message)  # a backend may echo the token back
            if cleaned != event.message:
                event = dataclasses.replace(event, message=cleaned)
        if event.attempt_id is not None and event.attempt_id != self.ids.attempt_id:
            self.log.info("dropped a late message of attempt {}", event.attempt_id)
            return
        match event:
            case Malformed(reason=reason, text=text):
                self.log.warning("skipped a malformed message ({}): {!r}", reason, text[:80])
                return
            case Unknown(type=kind):
                self.log.info("ignored a message of unknown type {!r}", kind)
                return
            case Status(state="connected"):
                if not self.start_sent:
                    self.start_sent = True
                    self.emit(Connected(at=self.clock(), connection_id=self.connection_id))
                    await ws.send_str(encode_start(self._start()))
                return
            case Status(state="streaming"):
                if self.protocol is None and self.start_sent:
                    self._streaming(event)
                return
            case Status(state="error", message=message):
                self.pending = errors.from_server("error", message)
            case ErrorMessage(message=message):
                self.pending = self.pending or errors.from_server("error_message", message)
            case Ack(source=source, seq=seq):
                self._check_written(source, seq, "an ack")
                self.outbox.confirm(source, seq)
            case AsrPartial() | AsrFinal() if self.protocol == "0.2":
                # a v0.2 backend ignores seq and counts time from the first frame written;
                # a v0.3 backend places audio by seq, gaps included: its times are the source's
                assert isinstance(event, Segment)
                base = self.outbox.timeline_base(event.source) * self.config.frame_seconds
                event = event.shifted(base)
            case FinalSummary():
                self.summary = event
        self.emit(event)

    def _start(self) -> Start:
        resume = self.outbox.resume_point() if self.offered_v03 and self.memo.streamed else None
        return Start(
            session_id=self.ids.session_id,
            attempt_id=self.ids.attempt_id,
            connection_id=self.connection_id,
            client_features=self.config.client_features,
            capabilities=CAPABILITIES if self.offered_v03 else None,
            resume=resume or None,
            # every reconnection is a resume, even with nothing in flight to resend
            resume_token=self.memo.resume_token if self.offered_v03 else None,
        )

    def _streaming(self, status: Status) -> None:
        v03 = self.offered_v03 and status.resumed is not None
        self.protocol = "0.3" if v03 else "0.2"
        resumed = bool(status.resumed) and v03
        if resumed:
            for source, seq in (status.next_seq or {}).items():
                self._check_written(source, seq - 1, "next_seq")
        if self.config.protocol == "0.3" and not v03:
            self.log.warning("the backend speaks only v0.2: no acks, no resume")
        if resumed:
            self.outbox.resume(dict(status.next_seq or {}))
        else:  # nothing below the first held frame is owed after a graceful restart
            self.outbox.resume({} if v03 and self.memo.restarted else None)
        self.memo.restarted = False
        first = not self.memo.streamed
        if status.resume_token is not None:  # a new session on the backend: its new secret
            self.memo.resume_token = status.resume_token
        self.memo.streamed = True
        self.memo.refreshes_left = 1
        self.log.info(
            "streaming (protocol {}, {})",
            self.protocol,
            "first connection" if first else ("resumed" if resumed else "session reset"),
        )
        self.emit(
            Streaming(
                at=self.clock(),
                connection_id=self.connection_id,
                protocol=self.protocol,
                resumed=None if first else resumed,
            )
        )
        self.unlisten = self.outbox.listen(self.wake.set)
        assert self.ws is not None
        self.writer = asyncio.get_running_loop().create_task(self._write(self.ws))

    def _check_written(self, source: str, seq: int, what: str) -> None:
        """Refuse a confirmation of frames never written (a lying or confused backend)."""
        last = self.outbox.last_written(source)
        if seq > last:
            self.log.warning(
                "protocol violation: {} confirms {} up to seq {}, but the last written is {}",
                what,
                source,
                seq,
                last,
            )
            raise errors.ProtocolViolation(
                f"protocol violation: {what} for {source} seq {seq} beyond the last frame "
                f"written ({last})"
            )

    # -- writing --------------------------------------------------------------------

    def _stalled(self) -> bool:
        """v0.2: barriers unanswered past the bound. Logged once per stall."""
        stalled = self.watch.stalled(asyncio.get_running_loop().time())
        if stalled and not self.stall_logged:
            self.log.warning(
                "ping barriers unanswered for {:.1f} s: holding frames for the next connection",
                self.watch.bound,
            )
        self.stall_logged = stalled
        return stalled

    async def _write(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        barriers = self.protocol == "0.2"
        with_seq = self.config.protocol != "0.2"
        binary = self.config.binary
        cork = Cork(ws.get_extra_info("socket"))
        since_barrier = written = 0
        try:
            while True:
                frame = None if barriers and self._stalled() else self.outbox.take()
                if frame is None:
                    cork.release()
                    if barriers and since_barrier and not self.stall_logged:
                        await self._barrier(ws)
                        since_barrier = 0
                    if self.outbox.finished and not self.stop_sent and not self.stall_logged:
                        self.stop_sent = True
                        await ws.send_str(encode_stop(Stop(self.ids.session_id)))
                        self.log.info("sent stop")
                    self.wake.clear()
                    await self.wake.wait()
                    continue
                if self.outbox.unsent:
                    cork.hold()  # a backlog: let the kernel pack it into full segments
                try:
                    if binary:
                        await ws.send_bytes(encode_audio_binary(frame))
                    else:
                        await ws.send_str(encode_audio_json(frame, with_seq=with_seq))
                except aiohttp.ClientConnectionResetError:
                    # raised before a byte is written: the frame stays unsent
                    self.outbox.untake(frame)
                    raise
                since_barrier += 1
                written += 1
                if barriers and since_barrier >= BARRIER_EVERY:
                    await self._barrier(ws)
                    since_barrier = 0
                if written % _YIELD_EVERY == 0:
                    cork.release()
                    await asyncio.sleep(0)  # let the reader take acks and pongs
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the socket broke under us: end the connection
            self.writer_error = exc
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), self.config.close_timeout)

    async def _barrier(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.barrier_count += 1
        self.barriers[self.barrier_count] = self.outbox.written_marks()
        self.watch.sent(self.barrier_count, asyncio.get_running_loop().time())
        await ws.ping(struct.pack(">Q", self.barrier_count))

    def _on_pong(self, payload: bytes) -> None:
        if len(payload) != 8:
            return
        (number,) = struct.unpack(">Q", payload)
        self.watch.answered(number, asyncio.get_running_loop().time())
        for key in [k for k in self.barriers if k <= number]:
            for source, seq in self.barriers.pop(key).items():
                self.outbox.confirm(source, seq)
        self.wake.set()  # a stalled writer may go on
