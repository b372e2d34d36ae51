"""Offline English speech recognition with pocketsphinx, one recogniser per source stream.

An `Endpointer` (voice activity over 20 ms frames) cuts the stream into utterances; only
speech reaches the `Decoder`, which is asked for at the first utterance (so a silent
source never costs one). While an utterance is in progress a partial is produced at most
once per `partial_interval` (by `clock`); at its end comes one final with `t0`/`t1` in
seconds from the start of the audio this recogniser was given, a confidence (the mean
posterior probability of its words) and the decoder's adaptation to the voice so far (its
cepstral mean, which pocketsphinx updates as it listens): a recogniser given it starts
where this one was instead of from the model's initial mean.

Blocking, and pocketsphinx holds the GIL throughout (`end_utt` alone for ~0.2 s): the
backend runs it in a decoder process (backend.decoder_worker), never on its own threads.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from pocketsphinx import Endpointer

from backend.asr import Hypothesis
from pipeline.audio import DEFAULT_FRAME_MS as FRAME_MS
from pipeline.audio import FRAME_BYTES, SAMPLE_RATE

FRAME_SECONDS = FRAME_MS / 1000  # FRAME_BYTES (20 ms of 16 kHz PCM16): what the Endpointer takes
VAD_WINDOW_S = 0.3  # an utterance ends ~this long after speech stops
VAD_RATIO = 0.9
PARTIAL_INTERVAL_S = 0.25  # at most 4 partials a second

Decoder = Any  # pocketsphinx.Decoder (the package ships no type information)


def build_decoder() -> Decoder:
    """The English model bundled with pocketsphinx, at 16 kHz; nothing is downloaded."""
    from pocketsphinx import Decoder as PocketsphinxDecoder

    return PocketsphinxDecoder(samprate=SAMPLE_RATE)


def _endpointer() -> Endpointer:
    return Endpointer(
        window=VAD_WINDOW_S, ratio=VAD_RATIO, frame_length=FRAME_SECONDS, sample_rate=SAMPLE_RATE
    )


class PocketsphinxRecognizer:
    """Implements backend.asr.Recognizer in the calling thread. `decoder` gives the decoder
    to use (called once, at the first speech; set to `adaptation`, a final's, if given);
    it is left between utterances by `close`."""

    def __init__(
        self,
        decoder: Callable[[], Decoder] = build_decoder,
        *,
        partial_interval: float = PARTIAL_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        adaptation: str | None = None,
    ) -> None:
        self._get_decoder = decoder
        self._adaptation = adaptation
        self._endpointer = _endpointer()
        self._epoch = 0.0  # stream time at which the endpointer started counting
        if self._endpointer.frame_bytes != FRAME_BYTES:  # pragma: no cover - library change
            raise RuntimeError(f"Endpointer wants {self._endpointer.frame_bytes}-byte frames")
        self._partial_interval = partial_interval
        self._clock = clock
        self._rest = b""  # bytes short of a whole frame, kept for the next call
        self._frames = 0  # whole frames given to the endpointer
        self._decoder: Decoder = None
        self._utterance_start: float | None = None
        self._last_partial_check = -math.inf
        self._last_partial = ""
        self._finished = False

    @property
    def position(self) -> float:
        """Seconds of audio taken so far (whole frames)."""
        return self._frames * FRAME_SECONDS

    def process(self, pcm: bytes) -> list[Hypothesis]:
        if self._finished:  # a drained session resumed: a new utterance, on the same timeline
            self._endpointer, self._epoch = _endpointer(), self.position
            self._finished = False
        out: list[Hypothesis] = []
        data = self._rest + pcm if self._rest else pcm
        whole = len(data) - len(data) % FRAME_BYTES
        view = memoryview(data)
        for offset in range(0, whole, FRAME_BYTES):
            self._frames += 1
            was_in_speech = self._endpointer.in_speech
            speech = self._endpointer.process(view[offset : offset + FRAME_BYTES])
            self._on_speech(speech, was_in_speech, out)
        self._rest = bytes(view[whole:])
        if self._utterance_start is not None:
            self._maybe_partial(out)
        return out

    def finish(self) -> list[Hypothesis]:
        """The end of the audio, or of a drain: close the utterance in progress, if any.
        Audio after it (a drained session that resumed) starts a new utterance, its times
        still counted from the start of the stream."""
        if self._finished:
            return []
        self._finished = True
        out: list[Hypothesis] = []
        if self._endpointer.in_speech:
            # end_stream takes the last (short) frame and returns the speech the
            # endpointer still holds back; it needs at least one sample.
            tail = self._rest or bytes(2)
            self._on_speech(self._endpointer.end_stream(tail), True, out)
        self._rest = b""
        if self._utterance_start is not None:  # still open: end it where the audio ends
            out.extend(self._end_utterance(self.position))
        return out

    def close(self) -> None:
        """Leave the decoder between utterances, ready for another recogniser."""
        if self._decoder is not None and self._utterance_start is not None:
            self._decoder.end_utt()
            self._utterance_start = None
        self._decoder = None
        self._finished = True

    # -- internals ------------------------------------------------------------------

    def _on_speech(self, speech: bytes | None, was_in_speech: bool, out: list[Hypothesis]) -> None:
        if speech is None:
            return
        if not was_in_speech or self._utterance_start is None:
            if self._decoder is None:
                self._decoder = self._get_decoder()
                if self._adaptation is not None:
                    self._decoder.set_cmn(self._adaptation)
            self._decoder.start_utt()
            self._utterance_start = self._epoch + float(self._endpointer.speech_start)
            self._last_partial = ""
        self._decoder.process_raw(speech, False, False)
        if not self._endpointer.in_speech:
            out.extend(self._end_utterance(self._epoch + float(self._endpointer.speech_end)))

    def _end_utterance(self, end: float) -> list[Hypothesis]:
        start, self._utterance_start = self._utterance_start, None
        self._decoder.end_utt()
        hyp = self._decoder.hyp()
        text = hyp.hypstr.strip() if hyp is not None else ""
        if start is None or not text:
            return []
        return [
            Hypothesis(
                text=text,
                t0=start,
                t1=max(end, start),
                final=True,
                confidence=self._confidence(),
                adaptation=self._decoder.get_cmn(False),
            )
        ]

    def _confidence(self) -> float | None:
        """Mean posterior probability of the recognised words (fillers and silences left out)."""
        probs = [
            min(1.0, max(0.0, float(seg.prob)))
            for seg in self._decoder.seg()
            if not seg.word.startswith(("<", "["))
        ]
        return sum(probs) / len(probs) if probs else None

    def _maybe_partial(self, out: list[Hypothesis]) -> None:
        now = self._clock()
        if now - self._last_partial_check < self._partial_interval:
            return
        self._last_partial_check = now
        hyp = self._decoder.hyp()
        text = hyp.hypstr.strip() if hyp is not None else ""
        if text and text != self._last_partial and self._utterance_start is not None:
            self._last_partial = text
            out.append(Hypothesis(text, self._utterance_start, self.position, final=False))
