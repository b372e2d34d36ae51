"""A deliberately slowed recogniser, to make the backend fall behind on purpose."""

from __future__ import annotations

import time

from backend.asr import Hypothesis, Recognizer, RecognizerFactory, close_factory
from pipeline.audio import BYTES_PER_SECOND


class SlowedRecognizer:
    """Wraps a real recogniser and sleeps `delay_per_audio_s` seconds per second of audio
    before each call: with a delay above 1 it recognises slower than real time."""

    def __init__(self, inner: Recognizer, delay_per_audio_s: float) -> None:
        self.inner = inner
        self.delay = delay_per_audio_s

    def process(self, pcm: bytes) -> list[Hypothesis]:
        time.sleep(self.delay * len(pcm) / BYTES_PER_SECOND)
        return self.inner.process(pcm)

    def finish(self) -> list[Hypothesis]:
        return self.inner.finish()

    def close(self) -> None:
        self.inner.close()


class SlowedRecognizers:
    """A RecognizerFactory of SlowedRecognizers around another factory's recognisers."""

    def __init__(self, inner: RecognizerFactory, delay_per_audio_s: float) -> None:
        self.inner = inner
        self.delay = delay_per_audio_s

    def __call__(self, adaptation: str | None = None) -> SlowedRecognizer:
        return SlowedRecognizer(self.inner(adaptation), self.delay)

    def close(self) -> None:
        close_factory(self.inner)
