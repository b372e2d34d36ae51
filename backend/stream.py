"""One source of one backend session: its recogniser, fed from the source's queue
(`backend/source_queue.py`) by a worker task, and what it recognised.

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
from backend.source_queue import Emit, SourceQueue
from pipeline.audio import BYTES_PER_SECOND
from pipeline.messages import to_wire
from pipeline.protocol import AsrFinal, AsrPartial, Metrics, Status

BATCH_SECONDS = 0.5

T = TypeVar("T")


def segment_hash(source: str, t0: float, t1: float, text: str) -> str:
    """The v0.2 segment id: a hash of its content, not unique across connections."""
    digest = hashlib.sha1(f"{source}|{t0:.3f}|{t1:.3f}|{text}".encode()).hexdigest()
    return f"{source}-{digest[:12]}"


class SourceStream(SourceQueue):
    """A source's queue and the recogniser behind it; `start` sets its worker going."""

    def __init__(
        self,
        source: str,
        recognizer: Recognizer,
        emit: Emit,
        *,
        recording: Recording | None,
        executor: Executor | None,
        queue_seconds: float,
        unique_ids: bool,
        batch_seconds: float = BATCH_SECONDS,
        pending: asyncio.Future[Recognizer] | None = None,
        drop_when_full: bool = False,
    ) -> None:
        super().__init__(
            source,
            emit,
            recording=recording,
            queue_seconds=queue_seconds,
            drop_when_full=drop_when_full,
        )
        self.recognizer = recognizer
        self.executor = executor  # None: the loop's default executor
        self.unique_ids = unique_ids
        self.recognizing = True  # False once no recogniser works for this source
        self.surrendering = False  # its recogniser is being handed to a live session
        self._batch_bytes = max(1, round(batch_seconds * BYTES_PER_SECOND))
        self._inflight: asyncio.Future[Any] | None = None
        self._infer_ms: deque[float] = deque(maxlen=50)
        self._audio_processed = 0.0
        self._busy_seconds = 0.0
        self.finals: list[dict[str, Any]] = []
        self._final_count = 0
        # The recogniser's adaptation after the last final: kept with it, never sent.
        self.adaptation: str | None = None
        # A recogniser still being handed over (backend/handover.py): audio queues meanwhile.
        self._pending = pending
        if pending is not None:
            self._idle.clear()
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> SourceStream:
        """Set the worker going: it feeds the recogniser until `close`."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work())
        return self

    def restore(self, keep_from: int, frame_bytes: int, finals: list[dict[str, Any]]) -> None:
        """Continue a source another instance began, with the finals it sent."""
        self.restore_position(keep_from, frame_bytes)
        self.finals = list(finals)
        self._final_count = len(finals)

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

    async def _await_recognizer(self, pending: asyncio.Future[Recognizer]) -> None:
        try:
            self.recognizer = await pending
        except Exception as exc:  # taken by someone else meanwhile: go on without
            self.recognizing = False
            self.emit(to_wire(Status(state="no_asr_provider", message=str(exc))))
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
            batch = self._take_batch(self._batch_bytes)
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
        message = (
            f"speech recognition failed on {self.source} ({type(exc).__name__}); "
            "audio is still received"
        )
        self.emit(to_wire(Status(state="warning", message=message)))

    def _publish(self, results: list[Hypothesis]) -> None:
        for hyp in results:
            t0, t1 = self._timeline.to_stream(hyp.t0), self._timeline.to_stream(hyp.t1)
            segment_id = None
            if hyp.final:
                self._timeline.forget_before(hyp.t1)
                self._final_count += 1
                self.adaptation = hyp.adaptation or self.adaptation
                segment_id = (
                    f"{self.source}-{self._final_count}"
                    if self.unique_ids
                    else segment_hash(self.source, t0, t1, hyp.text)
                )
            message = to_wire(
                (AsrFinal if hyp.final else AsrPartial)(
                    text=hyp.text,
                    t0=round(t0, 3),
                    t1=round(t1, 3),
                    source=self.source,
                    confidence=None if hyp.confidence is None else round(hyp.confidence, 3),
                    segment_id=segment_id,
                )
            )
            if hyp.final:
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
        if self._worker is not None:
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

    def metrics(self) -> dict[str, Any]:
        """The `metrics` message; `dropped_recent` counts from the previous one."""
        avg = sum(self._infer_ms) / len(self._infer_ms) if self._infer_ms else 0.0
        rtf = self._busy_seconds / self._audio_processed if self._audio_processed else 0.0
        metrics = Metrics(
            source=self.source,
            queue_depth=self.queue_depth,
            queue_max=self.queue_max,
            queue_fill_ratio=round(self.queue_depth / self.queue_max, 3),
            dropped_total=self.dropped_total,
            dropped_recent=self.dropped_recent,
            avg_infer_ms=round(avg, 2),
            realtime_factor=round(rtf, 3),
        )
        self.dropped_recent = 0
        return to_wire(metrics)
