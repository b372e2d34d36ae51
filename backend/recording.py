"""What the backend received, per session and source, on disk: `<dir>/<session>/<source>.wav`
(the session's directory is named by backend/record_path.py).

Audio is appended to a raw `.pcm` log as it arrives (so every connection of a session —
v0.2 backends start afresh on each — lands in one file), and the `.wav` next to it is
rewritten whenever the session detaches or ends.

A write that fails (disk full, out of file descriptors) never takes the session down: the
recording stops for good, `failed` says why, and the backend goes on transcribing and
tells the client so (backend/stream.py). A half-written frame is never acknowledged as
recorded, because from then on nothing is.
"""

from __future__ import annotations

import errno
import os
import wave
from pathlib import Path
from typing import BinaryIO

from loguru import logger

from backend.record_path import session_dir
from pipeline.audio import SAMPLE_RATE


class Recording:
    def __init__(self, root: Path, session_id: str, instance: int = 0) -> None:
        self.dir = session_dir(root, session_id, instance)
        self._files: dict[str, BinaryIO] = {}
        self.failed: str | None = None  # why recording stopped, once it has
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._fail(exc)

    def write(self, source: str, pcm: bytes) -> None:
        """Append `pcm`; on an OS error the recording stops (see `failed`), nothing raises."""
        if self.failed is not None:
            return
        try:
            handle = self._files.get(source)
            if handle is None:
                # unbuffered: what the backend acknowledged is on disk, even if it dies next
                handle = self._files[source] = (self.dir / f"{source}.pcm").open("ab", buffering=0)
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
                raw = (self.dir / f"{source}.pcm").read_bytes()
                with wave.open(str(self.dir / f"{source}.wav"), "wb") as wav:
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
