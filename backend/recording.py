"""What the backend received, per session and source, on disk: `<dir>/<session>/<source>.wav`
(the session's directory is named by backend/record_path.py).

Audio is appended to a raw `.pcm` log as it arrives (so every connection of a session —
v0.2 backends start afresh on each — lands in one file), and the `.wav` next to it is
rewritten whenever the session detaches or ends.

With a shared session store (`serve --store redis://...`) a session moves between
instances, and each instance that holds it records its own *segment*:
`<source>.<attempt>.<start>.pcm`, where `attempt` is the fencing token under which it
held the session and `start` the byte offset, in the source's audio, of its first frame.
Segments overlap where an instance recorded frames it never acknowledged (the client
sent them again to the next one) or frames it took while frozen after another instance
had taken over; `assemble` keeps each byte once, the later attempt's copy winning,
wherever the segments are (one shared record dir, or one per instance).

A write that fails (disk full, out of file descriptors) never takes the session down: the
recording stops for good, `failed` says why, and the backend goes on transcribing and
tells the client so (backend/stream.py). A half-written frame is never acknowledged as
recorded, because from then on nothing is.
"""

from __future__ import annotations

import errno
import os
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from loguru import logger

from backend.record_path import session_dir
from pipeline.audio import SAMPLE_RATE


class Recording:
    def __init__(self, root: Path, session_id: str, instance: int = 0) -> None:
        self.dir = session_dir(root, session_id, instance)
        self._files: dict[str, BinaryIO] = {}
        self.attempt = 0  # > 0: a session of a shared store, recorded in segments
        self._starts: dict[str, int] = {}
        self.failed: str | None = None  # why recording stopped, once it has
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._fail(exc)

    def segment(self, attempt: int, starts: dict[str, int]) -> None:
        """Record from now on as the shared store's `attempt`; `starts`: where each source
        taken up from the store goes on (bytes of its audio before this instance)."""
        self._close_files()
        self.attempt, self._starts = attempt, dict(starts)

    def path(self, source: str) -> Path:
        """The file `source` is recorded in: one per session, or this attempt's segment."""
        if self.attempt == 0:
            return self.dir / f"{source}.pcm"
        return self.dir / f"{source}.{self.attempt}.{self._starts.get(source, 0)}.pcm"

    def write(self, source: str, pcm: bytes) -> None:
        """Append `pcm`; on an OS error the recording stops (see `failed`), nothing raises."""
        if self.failed is not None:
            return
        try:
            handle = self._files.get(source)
            if handle is None:
                # unbuffered: what the backend acknowledged is on disk, even if it dies next
                handle = self._files[source] = self.path(source).open("ab", buffering=0)
            before = handle.tell()
            written = handle.write(pcm)
            if written != len(pcm):  # the disk filled mid-frame: keep whole frames only
                handle.truncate(before)
                raise OSError(
                    errno.ENOSPC,
                    f"{os.strerror(errno.ENOSPC)} ({written} of {len(pcm)} bytes written)",
                )
        except OSError as exc:
            self._fail(exc)

    def forget(self, source: str, size: int) -> None:
        """Cut the last `size` bytes of `source`: frames read but never acknowledged, which
        the client sends again (to this process or the next), so the recording keeps one
        copy of each."""
        handle = self._files.get(source)
        if self.failed is not None or handle is None or size <= 0:
            return
        if self.attempt > 0:
            # A segment keeps them: the shared store may hold them already (written, not
            # yet acknowledged), and the next attempt's start decides what is kept.
            return
        try:
            handle.truncate(max(0, handle.seek(0, os.SEEK_END) - size))
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self.failed = f"{type(exc).__name__}: {exc.strerror or exc}"
        logger.error("recording of {} stopped: {}", self.dir.name, self.failed)
        self._close_files()

    def _close_files(self) -> list[str]:
        sources = list(self._files)
        for handle in self._files.values():
            try:
                handle.close()
            except OSError as exc:
                logger.warning("closing a recording failed: {}", exc)
        self._files.clear()
        return sources

    def close(self) -> None:
        for source in self._close_files():
            try:
                path = self.path(source)
                raw = path.read_bytes()
                with wave.open(str(path.with_suffix(".wav")), "wb") as wav:
                    wav.setnchannels(1)
                    wav.setsampwidth(2)
                    wav.setframerate(SAMPLE_RATE)
                    wav.writeframes(raw)
            except OSError as exc:  # the raw .pcm log stays as the record
                logger.warning("writing {}.wav failed: {}", source, exc)


def recorded_pcm(root: Path, session_id: str, source: str = "system") -> bytes:
    """Everything recorded for one source of one session (for tests and tools)."""
    path = session_dir(root, session_id) / f"{source}.pcm"
    return path.read_bytes() if path.exists() else b""


@dataclass(frozen=True)
class Segment:
    """What one instance recorded of one source while it held the session."""

    attempt: int
    start: int  # byte offset of its first frame in the source's audio
    path: Path


def segments(roots: Iterable[Path], session_id: str, source: str) -> list[Segment]:
    """The segments of one source of one session, under any of the record dirs, in order."""
    found = []
    for root in roots:
        for path in session_dir(root, session_id).glob("*.pcm"):
            parts = path.name.rsplit(".", 3)  # <source>.<attempt>.<start>.pcm
            if len(parts) == 4 and parts[0] == source and parts[1].isdigit() and parts[2].isdigit():
                found.append(Segment(int(parts[1]), int(parts[2]), path))
    return sorted(found, key=lambda s: (s.attempt, s.start))


class RecordingGap(Exception):
    """The segments do not cover the source's audio: bytes between them were never recorded."""


def assemble(roots: Iterable[Path], session_id: str, source: str = "system") -> bytes:
    """One source's audio, each byte once, from the segments the instances recorded.

    A later attempt begins where the store had kept the audio up to; whatever an earlier
    attempt recorded from that offset on (unacknowledged, or written after it lost the
    session) is replaced. Raises RecordingGap if a later attempt begins beyond what the
    earlier ones recorded.
    """
    audio = bytearray()
    for segment in segments(roots, session_id, source):
        if segment.start > len(audio):
            raise RecordingGap(f"{source}: bytes {len(audio)} to {segment.start} missing")
        del audio[segment.start :]
        audio += segment.path.read_bytes()
    return bytes(audio)
