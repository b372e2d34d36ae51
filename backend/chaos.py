"""A fault-injecting TCP proxy for loopback: resets, black holes and delays, on a schedule.

    async with ChaosProxy(upstream_port=backend.port, faults=random_faults(seed=1)) as proxy:
        session = Session(SessionConfig(url=proxy.url), audio)

Faults, as a network produces them:

- `reset`: the connections die (RST). Traffic toward the backend stops first, at a
  message boundary, while replies still come back until the backend has answered every
  ping it was sent (for at most `drain` seconds) — so every frame the backend got can
  still be confirmed, however slowly it answers. For `duration` seconds afterwards new
  connections are refused too.
- `blackhole`: for `duration` seconds nothing moves in either direction, but nothing is
  closed either: only heartbeats can notice. Replies to what was delivered before the hole
  still come back first, as for a reset. As with TCP retransmission, what was held is
  delivered when the hole closes, if the connection is still alive by then.
- `delay`: for `duration` seconds every byte arrives `latency` seconds late.

The proxy reads the WebSocket frames both ways (it never changes them) so that cuts fall
between messages, it can count the audio it cut, and it knows which pings are answered.
It listens on loopback only, proxies to loopback only, and stops injecting after
`lifetime` seconds.
"""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from loguru import logger

from pipeline.config import is_local

FaultKind = Literal["reset", "blackhole", "delay"]
Unit = Literal["audio", "ping", "pong"] | None  # what the proxy counts as it delivers
KINDS: tuple[FaultKind, ...] = ("reset", "blackhole", "delay")


Clock = Literal["seconds", "frames"]
GRACE = 0.05  # seconds replies get after a hold even when no ping awaits its pong


@dataclass(frozen=True, slots=True)
class Fault:
    """`at` is seconds after the proxy starts, or — with the proxy's `clock="frames"` — the
    number of audio messages it has delivered, so faults land at points of the stream."""

    at: float
    kind: FaultKind
    duration: float = 0.5
    latency: float = 0.2  # for `delay`


def random_faults(
    seed: int,
    count: int = 20,
    *,
    span: tuple[float, float] = (0.3, 20.0),
    duration: tuple[float, float] = (0.1, 0.6),
    kinds: Sequence[FaultKind] = KINDS,
) -> list[Fault]:
    """`count` faults, every kind in `kinds` equally often, at random points of `span`
    (seconds, or audio messages for a proxy with `clock="frames"`)."""
    rng = random.Random(seed)
    chosen = [kinds[i % len(kinds)] for i in range(count)]
    rng.shuffle(chosen)
    points = sorted(rng.uniform(*span) for _ in chosen)
    return [
        Fault(at=round(at, 3), kind=kind, duration=round(rng.uniform(*duration), 3))
        for at, kind in zip(points, chosen, strict=True)
    ]


@dataclass
class ChaosStats:
    connections: int = 0
    refused: int = 0
    resets: int = 0
    blackholes: int = 0
    delays: int = 0
    faults_applied: list[Fault] = field(default_factory=list)
    faults_hit: int = 0  # faults that found at least one live connection
    audio_frames_forwarded: int = 0
    audio_frames_cut: int = 0  # audio messages the proxy received but never delivered


class _Pipe:
    """One direction of one connection: a queue of chunks and a writer that can be held."""

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        on_broken: Callable[[], None],
        on_progress: Callable[[Unit], None],
    ) -> None:
        self.writer = writer
        self.on_broken = on_broken
        self.on_progress = on_progress  # a unit was delivered, or the pipe parked at a hold
        self.queue: asyncio.Queue[tuple[float, bytes, bool, Unit]] = asyncio.Queue()
        self.open = asyncio.Event()
        self.open.set()
        self.hold_at_message = False
        self.latency = 0.0
        # the unit out of the queue and not yet delivered, and where it is: waiting for the
        # hold to end, late by the latency, or written and draining
        self.stage: Literal["held", "late", "writing"] | None = None
        self.unit: Unit = None
        self.task: asyncio.Task[None] | None = None

    @property
    def idle(self) -> bool:
        """Nothing more will be delivered until something new comes or the hold ends."""
        return self.stage == "held" or (self.stage is None and self.queue.empty())

    def start(self) -> _Pipe:
        self.task = asyncio.get_running_loop().create_task(self._write())
        return self

    def put(self, data: bytes, is_message: bool, unit: Unit) -> None:
        release = asyncio.get_running_loop().time() + self.latency
        self.queue.put_nowait((release, data, is_message, unit))

    def hold(self, *, at_message: bool) -> None:
        """Stop delivering: before the next data message (control frames such as pongs for
        what was delivered still pass), or before the next chunk of any kind."""
        if at_message:
            self.hold_at_message = True
        else:
            self.open.clear()

    def release(self) -> None:
        self.hold_at_message = False
        self.open.set()

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                release, data, is_message, unit = await self.queue.get()
                self.unit = unit
                if is_message and self.hold_at_message:
                    self.hold_at_message = False
                    self.open.clear()
                if not self.open.is_set():
                    self.stage = "held"
                    self.on_progress(None)
                    await self.open.wait()
                self.stage = "late"
                if (wait := release - loop.time()) > 0:
                    await asyncio.sleep(wait)
                self.stage = "writing"
                self.writer.write(data)
                await self.writer.drain()
                self.stage = None
                self.on_progress(unit)
                if unit == "audio":
                    await asyncio.sleep(0)  # let a fault due at this frame land right here
        except ConnectionError:
            self.on_broken()

    def held_audio(self) -> int:
        """Audio messages received and never written: the queue's, and one held back."""
        held = int(self.stage in ("held", "late") and self.unit == "audio")
        while not self.queue.empty():
            held += self.queue.get_nowait()[3] == "audio"
        return held

    def abort(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.writer.transport.abort()


class _Frames:
    """Splits a byte stream into the HTTP head and whole WebSocket frames; after a head
    that is not an upgrade (a refusal and its body), the rest passes as it comes."""

    def __init__(self) -> None:
        self.buffer = b""
        self.in_headers = True
        self.raw = False

    def feed(self, data: bytes) -> Iterable[tuple[bytes, bool, Unit]]:
        """Yields (bytes, is_data_message, what it is) for every complete unit."""
        self.buffer += data
        if self.in_headers:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[: end + 4], self.buffer[end + 4 :]
            self.in_headers = False
            self.raw = head.startswith(b"HTTP/") and not head.startswith(b"HTTP/1.1 101")
            yield head, False, None
        if self.raw:
            if self.buffer:
                yield self.buffer, False, None
                self.buffer = b""
            return
        while len(self.buffer) >= 2:
            opcode, second = self.buffer[0] & 0x0F, self.buffer[1]
            length, offset = second & 0x7F, 2
            if length == 126:
                if len(self.buffer) < 4:
                    return
                length, offset = struct.unpack(">H", self.buffer[2:4])[0], 4
            elif length == 127:
                if len(self.buffer) < 10:
                    return
                length, offset = struct.unpack(">Q", self.buffer[2:10])[0], 10
            masked = bool(second & 0x80)
            total = offset + (4 if masked else 0) + length
            if len(self.buffer) < total:
                return
            frame, self.buffer = self.buffer[:total], self.buffer[total:]
            is_data = opcode in (0x0, 0x1, 0x2)
            yield frame, is_data, _unit(frame, opcode, offset, masked)


def _unit(frame: bytes, opcode: int, offset: int, masked: bool) -> Unit:
    if opcode == 0x9:
        return "ping"
    if opcode == 0xA:
        return "pong"
    if opcode == 0x2:
        return "audio"
    if opcode != 0x1:
        return None
    start = offset + (4 if masked else 0)
    head = frame[start : start + 24]
    if masked:
        key = frame[offset : offset + 4]
        head = bytes(b ^ key[i % 4] for i, b in enumerate(head))
    return "audio" if head.startswith(b'{"type":"audio"') else None


class _Connection:
    def __init__(
        self,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        backend: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        stats: ChaosStats,
        on_audio: Callable[[], None],
    ) -> None:
        self.stats = stats
        self.on_audio = on_audio
        self.to_backend = _Pipe(backend[1], self.close, self._sent)
        self.to_client = _Pipe(client[1], self.close, self._answered)
        self.closed = asyncio.Event()
        self.pings = self.pongs = 0  # the client's pings delivered, the backend's pongs
        self._changed = asyncio.Event()
        self._readers = (client[0], backend[0])
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> _Connection:
        """Set both pipes and both pumps going."""
        self.to_backend.start()
        self.to_client.start()
        loop = asyncio.get_running_loop()
        self.tasks = [
            loop.create_task(self._pump(self._readers[0], self.to_backend)),
            loop.create_task(self._pump(self._readers[1], self.to_client)),
        ]
        return self

    async def _pump(self, reader: asyncio.StreamReader, pipe: _Pipe) -> None:
        frames = _Frames()
        try:
            while data := await reader.read(65536):
                for chunk, is_message, unit in frames.feed(data):
                    pipe.put(chunk, is_message, unit)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        self.close()

    def _sent(self, unit: Unit) -> None:
        if unit == "audio":
            self.stats.audio_frames_forwarded += 1
            self.on_audio()
        self.pings += unit == "ping"
        self._changed.set()

    def _answered(self, unit: Unit) -> None:
        self.pongs += unit == "pong"
        self._changed.set()

    async def settled(self) -> None:
        """Returns once traffic toward the backend rests (held, or nothing left to send)
        and every ping the backend got has had its pong delivered — or on close."""
        while not (self.closed.is_set() or (self.to_backend.idle and self.pongs >= self.pings)):
            self._changed.clear()
            await self._changed.wait()

    def hold(self) -> None:
        """Stop traffic toward the backend at the next message boundary."""
        self.to_backend.hold(at_message=True)

    def hold_replies(self) -> None:
        self.to_client.hold(at_message=False)

    def release(self) -> None:
        for pipe in (self.to_backend, self.to_client):
            pipe.release()

    def set_latency(self, latency: float) -> None:
        self.to_backend.latency = self.to_client.latency = latency

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        self._changed.set()
        for pipe in (self.to_backend, self.to_client):
            pipe.abort()
        self.stats.audio_frames_cut += self.to_backend.held_audio()
        for task in self.tasks:
            task.cancel()


class ChaosProxy:
    """Listens on 127.0.0.1 and forwards to a loopback backend, injecting `faults`."""

    def __init__(
        self,
        upstream_port: int,
        faults: Sequence[Fault] = (),
        *,
        upstream_host: str = "127.0.0.1",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = "seconds",
        drain: float = 1.0,
        lifetime: float = 600.0,
    ) -> None:
        if not (is_local(host) and is_local(upstream_host)):
            raise ValueError("the chaos proxy works on loopback only")
        self.upstream = (upstream_host, upstream_port)
        self.host, self.port = host, port
        self.faults = sorted(faults, key=lambda f: f.at)
        self.clock = clock
        self.drain = drain
        self.lifetime = lifetime
        self.stats = ChaosStats()
        self.connections: set[_Connection] = set()
        self.refusing_until = 0.0
        self.blackholed_until = 0.0
        self.latency_until = 0.0
        self.latency = 0.0
        self._progress = asyncio.Event()  # audio was delivered (drives the "frames" clock)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.log = logger.bind(component="chaos")

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws/live-listener"

    async def __aenter__(self) -> ChaosProxy:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self._spawn(self._run_schedule())
        self._spawn(self._expire())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for connection in list(self.connections):
            connection.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._now() < self.refusing_until:
            self.stats.refused += 1
            writer.transport.abort()
            return
        try:
            backend = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self.stats.connections += 1
        connection = _Connection((reader, writer), backend, self.stats, self._progress.set).start()
        if self._now() < self.blackholed_until:
            connection.to_backend.hold(at_message=False)
            connection.to_client.hold(at_message=False)
        if self._now() < self.latency_until:
            connection.set_latency(self.latency)
        self.connections.add(connection)
        await connection.closed.wait()
        self.connections.discard(connection)

    async def _expire(self) -> None:
        await asyncio.sleep(self.lifetime)
        self.log.info("chaos proxy lifetime over: no more faults")
        self.faults = []

    async def _run_schedule(self) -> None:
        began = self._now()
        last = -1
        for fault in list(self.faults):
            if self.clock == "frames":
                # each fault waits for its point of the stream, and for audio to flow again
                # since the previous one, so that every fault hits a live connection
                while (done := self.stats.audio_frames_forwarded) < fault.at or done <= last:
                    self._progress.clear()
                    await self._progress.wait()
                last = self.stats.audio_frames_forwarded
            else:
                await asyncio.sleep(max(0.0, began + fault.at - self._now()))
            if not self.faults:  # the lifetime is over
                return
            await self.inject(fault)

    async def inject(self, fault: Fault) -> None:
        """Apply one fault now (also usable by hand)."""
        self.stats.faults_applied.append(fault)
        self.stats.faults_hit += bool(self.connections)
        self.log.info("fault: {} for {:.2f} s", fault.kind, fault.duration)
        if fault.kind == "reset":
            self.stats.resets += 1
            self.refusing_until = self._now() + fault.duration
            await self._cut(list(self.connections))
        elif fault.kind == "blackhole":
            self.stats.blackholes += 1
            self.blackholed_until = self._now() + fault.duration
            self._spawn(self._blackhole(list(self.connections), fault.duration))
        else:
            self.stats.delays += 1
            self.latency, self.latency_until = fault.latency, self._now() + fault.duration
            for connection in self.connections:
                connection.set_latency(fault.latency)
            self._spawn(self._end_delay(fault.duration))

    async def _settle(self, connections: list[_Connection], bound: float) -> float:
        """Holds traffic toward the backend at a message boundary and lets replies come
        back until every ping the backend got is answered (at most `bound` seconds).
        Returns the time it took."""
        began = self._now()
        for connection in connections:
            connection.hold()
        await asyncio.sleep(min(GRACE, bound))  # replies already on their way (v0.3 acks)
        settled = asyncio.gather(*(connection.settled() for connection in connections))
        try:
            await asyncio.wait_for(settled, max(0.0, began + bound - self._now()))
        except TimeoutError:
            unanswered = sum(c.pings - c.pongs for c in connections if not c.closed.is_set())
            self.log.info("{} pings still unanswered after {:.2f} s", unanswered, bound)
        return self._now() - began

    async def _cut(self, connections: list[_Connection]) -> None:
        await self._settle(connections, self.drain)
        for connection in connections:
            connection.close()

    async def _blackhole(self, connections: list[_Connection], duration: float) -> None:
        took = await self._settle(connections, min(self.drain, duration))
        for connection in connections:
            connection.hold_replies()
        await asyncio.sleep(max(0.0, duration - took))
        for connection in list(self.connections):
            connection.release()

    async def _end_delay(self, duration: float) -> None:
        await asyncio.sleep(duration)
        if self._now() >= self.latency_until:
            self.latency = 0.0
            for connection in self.connections:
                connection.set_latency(0.0)
