"""The connection: a cold observable, one aiohttp WebSocket per subscription.

This module is the shell: it opens the socket, reads it, feeds `pipeline.link.LinkProtocol`
(where every rule of the protocol lives) and carries out the actions it returns.

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
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from pipeline import errors
from pipeline.audio import AudioFrame
from pipeline.config import SessionConfig
from pipeline.ids import SessionIds, new_id
from pipeline.link import (
    Action,
    Carryover,
    Emit,
    Fail,
    LinkEvent,
    LinkProtocol,
    Ping,
    SendStart,
    SendStop,
    StartWriting,
    Wake,
)
from pipeline.outbox import Outbox
from pipeline.protocol import (
    decode_event,
    encode_audio_binary,
    encode_audio_binary_seq,
    encode_audio_json,
    encode_start,
    encode_stop,
)
from pipeline.redaction import Secret

__all__ = ["Cork", "LinkEvent", "LinkMemo", "auth_headers", "connect"]
# Frames written between yields to the loop (the cork is released at each): a backlog
# leaves in bursts of this many, as a file source produces them (pipeline/sources.py).
_YIELD_EVERY = 128


@dataclass
class LinkMemo(Carryover):
    """What one connection hands to the next, and the tasks of the sockets still open."""

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
    never held back. The option is set through a duplicate descriptor of the socket, made
    the first time a backlog is corked (uvloop's transport socket builds a socket object,
    with a `getsockname`, on every `setsockopt`) and closed with `close`.
    """

    def __init__(self, sock: Any) -> None:
        option = getattr(socket, "TCP_CORK", None)
        tcp = option is not None and sock is not None and sock.family != socket.AF_UNIX
        self._sock = sock if tcp else None
        self._own: socket.socket | None = None
        self._held = False

    def _set(self, on: int) -> None:
        if self._sock is None:
            return
        with contextlib.suppress(OSError):
            if self._own is None:
                self._own = socket.socket(fileno=os.dup(self._sock.fileno()))
            self._own.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, on)

    def hold(self) -> None:
        if not self._held and self._sock is not None:
            self._held = True
            self._set(1)

    def release(self) -> None:
        if self._held:
            self._held = False
            self._set(0)

    def close(self) -> None:
        """Release, and close the duplicate descriptor (the socket itself stays open)."""
        self.release()
        if self._own is not None:
            self._own.close()
            self._own = None


class Wakeup:
    """The writer's wake-up call: `set` on any change, `wait` until one came since `clear`.

    An `asyncio.Event` looks its loop up and keeps a list of waiters on every wait; the
    writer waits about once per frame, alone, so a single future does. `is_set` is a
    plain attribute: the writer reads it after every frame.
    """

    __slots__ = ("_waiter", "is_set")

    def __init__(self) -> None:
        self.is_set = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        if self.is_set:
            return
        self.is_set = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        self.is_set = False

    async def wait(self) -> None:
        if self.is_set:
            return
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None


class _Link:
    """One socket's life: reads the socket, feeds the protocol, does what it says.
    All methods run on the event loop. One class (a little over 200 lines) because the
    socket, the reader, the writer task and its wake-up event live and die together;
    the rules are all in `LinkProtocol`."""

    def __init__(
        self,
        config: SessionConfig,
        ids: SessionIds,
        outbox: Outbox,
        clock: Callable[[], float],
        memo: LinkMemo,
        observer: abc.ObserverBase[LinkEvent],
    ) -> None:
        self.config, self.outbox, self.memo, self.observer = config, outbox, memo, observer
        self.link = LinkProtocol(config, ids, outbox, memo, connection_id=new_id(), clock=clock)
        self.log = self.link.log
        self.disposed = False
        self.task: asyncio.Task[None] | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.writer: asyncio.Task[None] | None = None
        self.writer_error: BaseException | None = None
        self.wake = Wakeup()
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
        for action in self.link.connecting():
            assert isinstance(action, Emit)
            self.emit(action.event)
        failure: Exception | None = None
        try:
            await self._run()
        except asyncio.CancelledError:
            if not self.disposed:
                raise
        except Exception as exc:
            if self.link.failed():
                self.log.info(
                    "the connection broke after the final summary ({})", type(exc).__name__
                )
            else:
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
            self.link.opened()
            await self._read(self.ws)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.connect_timeout
        peer_code: int | None = None
        while True:
            timeout = None
            if self.link.handshaking:  # the handshake must finish in time
                timeout = deadline - loop.time()
                if timeout <= 0:
                    raise errors.ConnectionLost("no `streaming` from the backend in time")
            msg = await ws.receive(timeout=timeout)
            if msg.type is aiohttp.WSMsgType.TEXT:
                await self._do(ws, self.link.event_received(decode_event(msg.data)))
            elif msg.type is aiohttp.WSMsgType.BINARY:
                self.log.warning(
                    "skipped a binary frame from the backend ({} bytes)", len(msg.data)
                )
            elif msg.type is aiohttp.WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type is aiohttp.WSMsgType.PONG:
                await self._do(ws, self.link.pong_received(msg.data, loop.time()))
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
        failure = self.link.closed(peer_code or ws.close_code)
        if failure is not None:
            raise failure

    async def _do(self, ws: aiohttp.ClientWebSocketResponse, actions: list[Action]) -> None:
        """Carry out the protocol's actions, in order."""
        for action in actions:
            match action:
                case Emit(event=event):
                    self.emit(event)
                case SendStart(start=start):
                    await ws.send_str(encode_start(start))
                case StartWriting():
                    self.unlisten = self.outbox.listen(self.wake.set)
                    self.writer = asyncio.get_running_loop().create_task(self._write(ws))
                case Ping(payload=payload):
                    await ws.ping(payload)
                case SendStop(stop=stop):
                    await ws.send_str(encode_stop(stop))
                    self.log.info("sent stop")
                case Wake():
                    self.wake.set()
                case Fail(error=error):
                    raise error

    # -- writing --------------------------------------------------------------------

    async def _write(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        loop = asyncio.get_running_loop()
        send = self._sender(ws)
        link, outbox, wake = self.link, self.outbox, self.wake
        # v0.2: the link paces the writer by ping barriers (it may stall it, and it pings
        # every BARRIER_EVERY frames); v0.3 has no rule per frame: the outbox's own take
        barriers = link.uses_barriers
        cork = Cork(ws.get_extra_info("socket"))
        written = 0
        try:
            while True:
                # cleared before looking: a change while this turn awaits wakes the next
                wake.clear()
                frame = link.take(loop.time()) if barriers else outbox.take()
                while frame is not None:
                    backlog = outbox.unsent
                    if backlog:
                        cork.hold()  # a backlog: let the kernel pack it into full segments
                    try:
                        await send(frame)
                    except aiohttp.ClientConnectionResetError:
                        # raised before a byte is written: the frame stays unsent
                        outbox.untake(frame)
                        raise
                    written += 1
                    if barriers:
                        actions = link.written(loop.time())
                        if actions:
                            await self._do(ws, actions)
                    if written % _YIELD_EVERY == 0:
                        cork.release()
                        await asyncio.sleep(0)  # let the reader take acks and pongs
                    elif not backlog and not wake.is_set:
                        break  # nothing was left and nothing changed since: dry
                    wake.clear()
                    frame = link.take(loop.time()) if barriers else outbox.take()
                cork.release()
                # the writer ran dry: v0.2 closes its last barrier; `stop` once all is
                # written (v0.3 has nothing else to do here, once per real-time frame)
                if barriers or outbox.closed:
                    actions = link.idle(loop.time())
                    if actions:
                        await self._do(ws, actions)
                await wake.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the socket broke under us: end the connection
            self.writer_error = exc
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), self.config.close_timeout)
        finally:
            cork.close()

    def _sender(
        self, ws: aiohttp.ClientWebSocketResponse
    ) -> Callable[[AudioFrame], Awaitable[None]]:
        """How a frame goes on the wire, as negotiated: v2 binary with seq, v1 binary, JSON."""
        if self.link.binary_seq:
            return lambda frame: ws.send_bytes(encode_audio_binary_seq(frame))
        if self.config.binary:
            return lambda frame: ws.send_bytes(encode_audio_binary(frame))
        with_seq = self.config.protocol != "0.2"
        return lambda frame: ws.send_str(encode_audio_json(frame, with_seq=with_seq))
