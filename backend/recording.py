"""What the backend received, per session and source, on disk: `<dir>/<session>/<source>.wav`
(the session's directory is named by backend/record_path.py).

Audio is appended to a raw `.pcm` log as it arrives (so every connection of a session —
v0.2 backends start afresh on each — lands in one file), and the `.wav` next to it is
rewritten whenever the session detaches or ends.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import BinaryIO

from backend.record_path import session_dir

SAMPLE_RATE = 16_000


class Recording:
    def __init__(self, root: Path, session_id: str, instance: int = 0) -> None:
        self.dir = session_dir(root, session_id, instance)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, BinaryIO] = {}

    def write(self, source: str, pcm: bytes) -> None:
        handle = self._files.get(source)
        if handle is None:
            # unbuffered: what the backend acknowledged is on disk, even if it dies next
            handle = self._files[source] = (self.dir / f"{source}.pcm").open("ab", buffering=0)
        handle.write(pcm)

    def close(self) -> None:
        for source, handle in self._files.items():
            handle.close()
            raw = (self.dir / f"{source}.pcm").read_bytes()
            with wave.open(str(self.dir / f"{source}.wav"), "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(SAMPLE_RATE)
                wav.writeframes(raw)
        self._files.clear()


def recorded_pcm(root: Path, session_id: str, source: str = "system") -> bytes:
    """Everything recorded for one source of one session (for tests and tools)."""
    path = session_dir(root, session_id) / f"{source}.pcm"
    return path.read_bytes() if path.exists() else b""
