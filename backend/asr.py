"""Speech recognisers the backend can run per source. Recognisers are blocking and run
in an executor; `pocketsphinx` recognises English offline, `none` accepts audio and
recognises nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """`t0`/`t1` are seconds from the start of the audio this recogniser was given.

    A final may carry the recogniser's `adaptation` to the voice after it (opaque text,
    e.g. pocketsphinx's cepstral mean): a recogniser started from it, fed the audio after
    that final, recognises it as this one would have. Never sent to the client."""

    text: str
    t0: float
    t1: float
    final: bool
    confidence: float | None = None
    adaptation: str | None = None


class Recognizer(Protocol):
    def process(self, pcm: bytes) -> list[Hypothesis]:
        """Feed PCM16 mono 16 kHz; returns partials and finals that became known."""
        ...

    def finish(self) -> list[Hypothesis]:
        """End of audio: the final of an utterance still in progress, if any. More audio
        may follow (a session drained by a graceful shutdown resumes): it goes on."""
        ...

    def close(self) -> None: ...


class RecognizerUnavailable(Exception):
    """No recogniser can be given to a new source right now (e.g. all decoders in use)."""


class NullRecognizer:
    """Accepts audio, recognises nothing (`--asr none`)."""

    def __init__(self, adaptation: str | None = None) -> None:
        pass

    def process(self, pcm: bytes) -> list[Hypothesis]:
        return []

    def finish(self) -> list[Hypothesis]:
        return []

    def close(self) -> None:
        return None


class RecognizerFactory(Protocol):
    """Makes one recogniser per source; may raise RecognizerUnavailable. A factory holding
    resources (pocketsphinx's decoder processes) has a `close()` too: see close_factory."""

    def __call__(self, adaptation: str | None = None) -> Recognizer:
        """A recogniser starting from a saved `adaptation` (a final's), or from none."""
        ...


ASR_KINDS = ("pocketsphinx", "none")
DEFAULT_DECODERS = 4


def recognizer_factory(kind: str, *, max_decoders: int = DEFAULT_DECODERS) -> RecognizerFactory:
    """Recognisers of one kind; pocketsphinx ones share a pool of `max_decoders` decoders."""
    if kind == "none":
        return NullRecognizer
    if kind == "pocketsphinx":
        from backend.decoder_pool import PocketsphinxRecognizers

        return PocketsphinxRecognizers(max_decoders)
    raise ValueError(f"unknown ASR {kind!r} (choose: {', '.join(ASR_KINDS)})")


def close_factory(factory: RecognizerFactory) -> None:
    """Release what a factory holds, if anything (blocking: decoder processes are stopped)."""
    if isinstance(factory, type):  # a recogniser class (NullRecognizer): nothing shared
        return
    close = getattr(factory, "close", None)
    if callable(close):
        close()
