"""Speech recognisers the backend can run per source. Recognisers are blocking and run
in an executor; `none` accepts audio and recognises nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """`t0`/`t1` are seconds from the start of the audio this recogniser was given."""

    text: str
    t0: float
    t1: float
    final: bool
    confidence: float | None = None


class Recognizer(Protocol):
    def process(self, pcm: bytes) -> list[Hypothesis]:
        """Feed PCM16 mono 16 kHz; returns partials and finals that became known."""
        ...

    def finish(self) -> list[Hypothesis]:
        """End of audio: the final of an utterance still in progress, if any."""
        ...

    def close(self) -> None: ...


class NullRecognizer:
    """Accepts audio, recognises nothing (`--asr none`)."""

    def process(self, pcm: bytes) -> list[Hypothesis]:
        return []

    def finish(self) -> list[Hypothesis]:
        return []

    def close(self) -> None:
        return None


RecognizerFactory = Callable[[], Recognizer]


def recognizer_factory(kind: str) -> RecognizerFactory:
    if kind == "none":
        return NullRecognizer
    raise ValueError(f"unknown ASR {kind!r} (choose: none)")
