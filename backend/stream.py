"""One source of one backend session: sequence checks, recording, and the recogniser fed
through a queue bounded in frames and in bytes, so a slow recogniser never costs memory.

The recogniser runs in an executor, one call at a time, on batches of at most
`batch_seconds`: the event loop never waits for it, and a call never holds a large
backlog. `ackable_seq` is the last frame handed to the recogniser (or dropped): v0.3
acks stop there, so a client that can wait (a file) waits while the recogniser is
behind instead of overflowing the queue.

An ack is a promise that the frame will be transcribed, so a full queue never drops
(v0.3): the connection stops reading (`wait_for_room`) and TCP holds the client back,
whose outbox keeps the backlog. Only the legacy v0.2 mode (`drop_when_full`), which
imitates the existing backends, drops and counts what it dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from loguru import logger

from backend.asr import Hypothesis, NullRecognizer, Recognizer
from backend.recording import Recording
from backend.timeline import Timeline

BYTES_PER_SECOND = 32_000
FRAMES_PER_SECOND = 50  # 20 ms frames
BATCH_SECONDS = 0.5

T = TypeVar("T")


def segment_hash(source: str, t0: float, t1: float, text: str) -> str:
    """The v0.2 segment id: a hash of its content, not unique across connections."""
    digest = hashlib.sha1(f"{source}|{t0:.3f}|{t1:.3f}|{text}".encode()).hexdigest()
    return f"{source}-{digest[:12]}"


class SourceStream:
    def __init__(
        self,
        source: str,
        recognizer: Recognizer,
        emit: Callable[[dict[str, Any]], None],
        *,
        recording: Recording | None,
        executor: Executor | None,
        queue_seconds: float,
        unique_ids: bool,
        batch_seconds: float = BATCH_SECONDS,
        pending: asyncio.Future[Recognizer] | None = None,
        drop_when_full: bool = False,
    ) -> None:
        self.source = source
        self.recognizer = recognizer
        self.emit = emit
        self.recording = recording
        self.executor = executor  # None: the loop's default executor
        self.unique_ids = unique_ids
        self.next_seq = 0  # the next frame this stream expects
        self.frame_bytes = 0  # size of the latest frame (seq -> stream time)
        self.acked_seq = -1
        self.frames_since_ack = 0
        self.received_bytes = 0
        self.handed_bytes = 0  # given to the recogniser
        self.duplicates = 0
        self.gaps = 0
        self.dropped_total = 0
        self.dropped_recent = 0
        self.recognizing = True  # False once no recogniser works for this source
        self.surrendering = False  # its recogniser is being handed to a live session
        self.queue_max = max(1, round(queue_seconds * FRAMES_PER_SECOND))
        self.queue_max_bytes = max(1, round(queue_seconds * BYTES_PER_SECOND))
        self.drop_when_full = drop_when_full
        self._recording_announced = False
        self._batch_bytes = max(1, round(batch_seconds * BYTES_PER_SECOND))
        self._queue: deque[tuple[int, bytes]] = deque()
        self._queued_bytes = 0
        self._timeline = Timeline()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._room = asyncio.Event()
        self._room.set()
        self._inflight: asyncio.Future[Any] | None = None
        self._infer_ms: deque[float] = deque(maxlen=50)
        self._audio_processed = 0.0
        self._busy_seconds = 0.0
        self.finals: list[dict[str, Any]] = []
        self._final_count = 0
        self._closed = False
        # A recogniser still being handed over (backend/handover.py): audio queues meanwhile.
        self._pending = pending
        if pending is not None:
            self._idle.clear()
        self._worker = asyncio.get_running_loop().create_task(self._work())

    # -- intake ---------------------------------------------------------------------

    def accept(self, pcm: bytes, seq: int | None, *, record: bool = True) -> bool:
        """Take one frame; False for a duplicate (a resent frame the stream already has)."""
        if seq is None:
            seq = self.next_seq
        elif seq < self.next_seq:
            self.duplicates += 1
            return False
        elif seq > self.next_seq:
            self.gaps += 1  # the client dropped frames (over its buffer): accept and go on
            missing = (seq - self.next_seq) * len(pcm) / BYTES_PER_SECOND
            self._timeline.skip(self._fed_seconds, missing)
        if record:
            self._record(pcm)
        self.frame_bytes = len(pcm)
        self.next_seq = seq + 1
        self.frames_since_ack += 1
        self.received_bytes += len(pcm)
        if self.drop_when_full and self._full(len(pcm)):
            self.dropped_total += 1
            self.dropped_recent += 1
            self._timeline.skip(self._fed_seconds, len(pcm) / BYTES_PER_SECOND)
        else:
            self._queue.append((seq, pcm))
            self._queued_bytes += len(pcm)
            self._idle.clear()
            self._wakeup.set()
            if self.full:
                self._room.clear()
        return True

    def restore(self, keep_from: int, frame_bytes: int, finals: list[dict[str, Any]]) -> None:
        """Continue a source another instance began: audio from `keep_from` on comes next."""
        self.next_seq = keep_from
        self.frame_bytes = frame_bytes
        self.received_bytes = keep_from * frame_bytes  # what the earlier instances took
        self._timeline.skip(0.0, keep_from * frame_bytes / BYTES_PER_SECOND)
        self.finals = list(finals)
        self._final_count = len(finals)

    def _full(self, incoming: int) -> bool:
        """Bounded in frames and in bytes: large frames fill it as fast as their audio."""
        over_bytes = self._queued_bytes + incoming > self.queue_max_bytes
        return len(self._queue) >= self.queue_max or (bool(self._queue) and over_bytes)

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def _record(self, pcm: bytes) -> None:
        """Write the frame to the recording; when that fails, say so once and go on."""
        recording = self.recording
        if recording is None:
            return
        recording.write(self.source, pcm)
        if recording.failed is not None and not self._recording_announced:
            self._recording_announced = True
            self.emit(
                {
                    "type": "status",
                    "state": "warning",
                    "message": f"recording stopped on {self.source} ({recording.failed}); "
                    "audio is still transcribed",
                    "recording": False,
                }
            )

    @property
    def full(self) -> bool:
        """No room for another byte: the queue holds its bound of frames or of bytes."""
        return self._full(1)

    async def wait_for_room(self) -> None:
        """Until the recogniser has taken enough for the queue to be under its bounds."""
        while self.full and not self._closed:
            await self._room.wait()

    @property
    def _fed_seconds(self) -> float:
        """Recogniser time at the tail of the queue: where newly queued audio will land."""
        return (self.handed_bytes + self._queued_bytes) / BYTES_PER_SECOND

    @property
    def ackable_seq(self) -> int:
        """The last seq such that it and every frame before it was handed on (or dropped)."""
        return self._queue[0][0] - 1 if self._queue else self.next_seq - 1

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def overloaded(self) -> bool:
        filled = max(len(self._queue) / self.queue_max, self._queued_bytes / self.queue_max_bytes)
        return filled >= 0.8 or self.dropped_recent > 0

    # -- recognition ----------------------------------------------------------------

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        """Run a recogniser method in the executor; `close` waits for the call in flight."""
        future = asyncio.get_running_loop().run_in_executor(self.executor, function, *args)
        self._inflight = future
        try:
            return await asyncio.shield(future)
        finally:
            if future.done() and self._inflight is future:
                self._inflight = None

    def _take_batch(self) -> bytes:
        parts: list[bytes] = []
        size = 0
        while self._queue and (not parts or size + len(self._queue[0][1]) <= self._batch_bytes):
            _, pcm = self._queue.popleft()
            parts.append(pcm)
            size += len(pcm)
        self._queued_bytes -= size
        self.handed_bytes += size
        if not self.full:
            self._room.set()
        return b"".join(parts)

    async def _await_recognizer(self, pending: asyncio.Future[Recognizer]) -> None:
        try:
            self.recognizer = await pending
        except Exception as exc:  # taken by someone else meanwhile: go on without
            self.recognizing = False
            self.emit({"type": "status", "state": "no_asr_provider", "message": str(exc)})
        self._pending = None

    async def _work(self) -> None:
        if self._pending is not None:
            await self._await_recognizer(self._pending)
        while True:
            if not self._queue:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = self._take_batch()
            began = time.perf_counter()
            try:
                results = await self._call(self.recognizer.process, batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                results = []
                await self._recognizer_failed(exc)
            spent = time.perf_counter() - began
            self._busy_seconds += spent
            self._audio_processed += len(batch) / BYTES_PER_SECOND
            self._infer_ms.append(spent * 1000)
            self._publish(results)

    async def _recognizer_failed(self, exc: Exception) -> None:
        """Go on without recognition (audio is still received, recorded and acked)."""
        logger.opt(exception=exc).error("recogniser failed on {}; recognition stops", self.source)
        broken, self.recognizer = self.recognizer, NullRecognizer()
        self.recognizing = False
        with contextlib.suppress(Exception):
            await self._call(broken.close)
        self.emit(
            {
                "type": "status",
                "state": "warning",
                "message": f"speech recognition failed on {self.source} ({type(exc).__name__}); "
                "audio is still received",
            }
        )

    def _publish(self, results: list[Hypothesis]) -> None:
        for hyp in results:
            t0, t1 = self._timeline.to_stream(hyp.t0), self._timeline.to_stream(hyp.t1)
            message: dict[str, Any] = {
                "type": "asr_final" if hyp.final else "asr_partial",
                "text": hyp.text,
                "t0": round(t0, 3),
                "t1": round(t1, 3),
                "source": self.source,
            }
            if hyp.confidence is not None:
                message["confidence"] = round(hyp.confidence, 3)
            if hyp.final:
                self._timeline.forget_before(hyp.t1)
                self._final_count += 1
                message["segment_id"] = (
                    f"{self.source}-{self._final_count}"
                    if self.unique_ids
                    else segment_hash(self.source, t0, t1, hyp.text)
                )
                self.finals.append(message)
            self.emit(message)

    async def surrender(self) -> None:
        """Give the recogniser up (to a live session): transcribe what is queued, end the
        utterance, close it. Audio that comes later is recorded, not transcribed."""
        await self.finish()
        recognizer, self.recognizer = self.recognizer, NullRecognizer()
        self.recognizing = False
        try:
            await self._call(recognizer.close)
        except Exception as exc:
            logger.opt(exception=exc).warning("closing the recogniser of {} failed", self.source)

    def forget_unacked(self) -> None:
        """Drop the queued frames (never acknowledged: the client still has them) so that
        `finish` transcribes only what was handed on; the stream expects them again."""
        if self._queue:
            if self.recording is not None:
                self.recording.forget(self.source, self._queued_bytes)
            self.next_seq = self._queue[0][0]
            self.received_bytes -= self._queued_bytes  # they will be received again
            self._queue.clear()
            self._queued_bytes = 0
            self._wakeup.set()

    async def finish(self) -> None:
        """Recognise everything queued, then close the utterance in progress."""
        await self._idle.wait()
        try:
            results = await self._call(self.recognizer.finish)
        except Exception as exc:
            results = []
            await self._recognizer_failed(exc)
        self._publish(results)

    async def close(self) -> None:
        """Stop recognising; the recogniser is closed once its call in flight returns."""
        if self._closed:
            return
        self._closed = True
        self._room.set()  # a connection waiting for room stops waiting
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        if self._pending is not None:  # a recogniser on its way: take it, to close it
            pending, self._pending = self._pending, None
            with contextlib.suppress(Exception):
                self.recognizer = await pending
        if self._inflight is not None:
            with contextlib.suppress(Exception):
                await self._inflight
        try:
            await self._call(self.recognizer.close)
        except Exception as exc:
            logger.opt(exception=exc).warning("closing the recogniser of {} failed", self.source)

    # -- reporting ------------------------------------------------------------------

    @property
    def handed_seconds(self) -> float:
        return self.handed_bytes / BYTES_PER_SECOND

    def metrics(self) -> dict[str, Any]:
        avg = sum(self._infer_ms) / len(self._infer_ms) if self._infer_ms else 0.0
        rtf = self._busy_seconds / self._audio_processed if self._audio_processed else 0.0
        message = {
            "type": "metrics",
            "source": self.source,
            "queue_depth": self.queue_depth,
            "queue_max": self.queue_max,
            "queue_fill_ratio": round(self.queue_depth / self.queue_max, 3),
            "dropped_total": self.dropped_total,
            "dropped_recent": self.dropped_recent,
            "avg_infer_ms": round(avg, 2),
            "realtime_factor": round(rtf, 3),
        }
        self.dropped_recent = 0
        return message
