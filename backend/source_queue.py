"""The intake of one source: sequence checks, recording, and the queue in front of its
recogniser, bounded in frames and in bytes so that a slow recogniser never costs memory.

`ackable_seq` is the last frame handed to the recogniser (or dropped): v0.3 acks stop
there. A full queue never drops (v0.3): the connection waits for room. Only the legacy
v0.2 mode (`drop_when_full`) drops, and counts what it dropped.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from backend.recording import Recording
from backend.timeline import Timeline
from pipeline.audio import BYTES_PER_SECOND, FRAMES_PER_SECOND
from pipeline.messages import to_wire
from pipeline.protocol import Status

Emit = Callable[[dict[str, Any]], None]


class SourceQueue:
    """What a source received and what waits for its recogniser (`SourceStream` feeds it)."""

    def __init__(
        self,
        source: str,
        emit: Emit,
        *,
        recording: Recording | None,
        queue_seconds: float,
        drop_when_full: bool = False,
    ) -> None:
        self.source = source
        self.emit = emit
        self.recording = recording
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
        self.queue_max = max(1, round(queue_seconds * FRAMES_PER_SECOND))
        self.queue_max_bytes = max(1, round(queue_seconds * BYTES_PER_SECOND))
        self.drop_when_full = drop_when_full
        self._recording_announced = False
        self._queue: deque[tuple[int, bytes]] = deque()
        self._queued_bytes = 0
        self._timeline = Timeline()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._room = asyncio.Event()
        self._room.set()
        self._closed = False

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

    def restore_position(self, keep_from: int, frame_bytes: int) -> None:
        """Continue a source another instance began: audio from `keep_from` on comes next."""
        self.next_seq = keep_from
        self.frame_bytes = frame_bytes
        self.received_bytes = keep_from * frame_bytes  # what the earlier instances took
        self._timeline.skip(0.0, keep_from * frame_bytes / BYTES_PER_SECOND)

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
            message = (
                f"recording stopped on {self.source} ({recording.failed}); "
                "audio is still transcribed"
            )
            self.emit(to_wire(Status(state="warning", message=message, recording=False)))

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

    @property
    def handed_seconds(self) -> float:
        return self.handed_bytes / BYTES_PER_SECOND

    def _take_batch(self, limit: int) -> bytes:
        """At most `limit` bytes (at least one frame) off the queue, for the recogniser."""
        parts: list[bytes] = []
        size = 0
        while self._queue and (not parts or size + len(self._queue[0][1]) <= limit):
            _, pcm = self._queue.popleft()
            parts.append(pcm)
            size += len(pcm)
        self._queued_bytes -= size
        self.handed_bytes += size
        if not self.full:
            self._room.set()
        return b"".join(parts)

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
