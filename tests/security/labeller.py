"""A recogniser for tests that must tell whose audio a final came from: it calls every
second of audio it is given "sound" or "silence" (all-zero PCM). Real code, no pocketsphinx:
it lets a test assert exactly which finals each client sees."""

from __future__ import annotations

from backend.asr import Hypothesis
from pipeline.audio import BYTES_PER_SECOND

SECOND = BYTES_PER_SECOND


class Labeller:
    def __init__(self, adaptation: str | None = None) -> None:
        self._pending = b""
        self._at = 0.0

    def process(self, pcm: bytes) -> list[Hypothesis]:
        self._pending += pcm
        out: list[Hypothesis] = []
        while len(self._pending) >= SECOND:
            chunk, self._pending = self._pending[:SECOND], self._pending[SECOND:]
            text = "silence" if not any(chunk) else "sound"
            out.append(Hypothesis(text=text, t0=self._at, t1=self._at + 1.0, final=True))
            self._at += 1.0
        return out

    def finish(self) -> list[Hypothesis]:
        return []

    def close(self) -> None:
        pass
