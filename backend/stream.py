"""One source of one backend session: sequence checks, recording, and the recogniser fed
through a bounded queue so a slow recogniser costs dropped ASR input, never memory."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from backend.asr import Hypothesis, Recognizer
from backend.recording import Recording

BYTES_PER_SECOND = 32_000


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
    ) -> None:
        self.source = source
        self.recognizer = recognizer
        self.emit = emit
        self.recording = recording
        self.executor = executor
        self.unique_ids = unique_ids
        self.next_seq = 0  # the next frame this stream expects
        self.acked_seq = -1
        self.frames_since_ack = 0
        self.received_bytes = 0
        self.duplicates = 0
        self.gaps = 0
        self.dropped_total = 0
        self.dropped_recent = 0
        self.queue_max = max(1, round(queue_seconds * 50))
        self._queue: deque[bytes] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._infer_ms: deque[float] = deque(maxlen=50)
        self._audio_processed = 0.0
        self._busy_seconds = 0.0
        self.finals: list[dict[str, Any]] = []
        self._final_count = 0
        self._worker = asyncio.get_running_loop().create_task(self._work())

    # -- intake ---------------------------------------------------------------------

    def accept(self, pcm: bytes, seq: int | None) -> bool:
        """Take one frame; False for a duplicate (a resent frame the stream already has)."""
        if seq is None:
            seq = self.next_seq
        elif seq < self.next_seq:
            self.duplicates += 1
            return False
        elif seq > self.next_seq:
            self.gaps += 1  # the client dropped frames (over its buffer): accept and go on
        self.next_seq = seq + 1
        self.frames_since_ack += 1
        self.received_bytes += len(pcm)
        if self.recording is not None:
            self.recording.write(self.source, pcm)
        if len(self._queue) >= self.queue_max:
            self.dropped_total += 1
            self.dropped_recent += 1
        else:
            self._queue.append(pcm)
            self._idle.clear()
            self._wakeup.set()
        return True

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def overloaded(self) -> bool:
        return len(self._queue) >= self.queue_max * 0.8 or self.dropped_recent > 0

    # -- recognition ----------------------------------------------------------------

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = b"".join(self._queue)
            self._queue.clear()
            began = time.perf_counter()
            if self.executor is None:
                results = self.recognizer.process(batch)
            else:
                results = await loop.run_in_executor(self.executor, self.recognizer.process, batch)
            spent = time.perf_counter() - began
            self._busy_seconds += spent
            self._audio_processed += len(batch) / BYTES_PER_SECOND
            self._infer_ms.append(spent * 1000)
            self._publish(results)

    def _publish(self, results: list[Hypothesis]) -> None:
        for hyp in results:
            message: dict[str, Any] = {
                "type": "asr_final" if hyp.final else "asr_partial",
                "text": hyp.text,
                "t0": round(hyp.t0, 3),
                "t1": round(hyp.t1, 3),
                "source": self.source,
            }
            if hyp.confidence is not None:
                message["confidence"] = round(hyp.confidence, 3)
            if hyp.final:
                self._final_count += 1
                message["segment_id"] = (
                    f"{self.source}-{self._final_count}"
                    if self.unique_ids
                    else segment_hash(self.source, hyp.t0, hyp.t1, hyp.text)
                )
                self.finals.append(message)
            self.emit(message)

    async def finish(self) -> None:
        """Recognise everything queued, then close the utterance in progress."""
        await self._idle.wait()
        loop = asyncio.get_running_loop()
        if self.executor is None:
            results = self.recognizer.finish()
        else:
            results = await loop.run_in_executor(self.executor, self.recognizer.finish)
        self._publish(results)

    async def close(self) -> None:
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        self.recognizer.close()

    # -- reporting ------------------------------------------------------------------

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
