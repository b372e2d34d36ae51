"""A recogniser taken up after a final, from the adaptation that final carries, recognises
the rest of the recording exactly as the uninterrupted one did; from the model's initial
state it does not. Real pocketsphinx, in a real decoder process (the backend's own path:
factory, pool, worker), reused by every recogniser of the test as the backend reuses it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend.asr import Hypothesis
from backend.decoder_pool import PocketsphinxRecognizers
from pipeline.audio import FRAME_BYTES
from tests.asr.speech import BYTES_PER_SECOND, speech_pcm

SECONDS = 12.0  # two sentences and the start of a third
CHUNK = BYTES_PER_SECOND // 2  # the backend's batches


@pytest.fixture(scope="module")
def recognizers() -> Iterator[PocketsphinxRecognizers]:
    factory = PocketsphinxRecognizers(1, partial_interval=1e9)  # finals only
    try:
        yield factory
    finally:
        factory.close()


def finals(
    recognizers: PocketsphinxRecognizers, pcm: bytes, adaptation: str | None
) -> list[Hypothesis]:
    recognizer = recognizers(adaptation)
    try:
        out = [h for o in range(0, len(pcm), CHUNK) for h in recognizer.process(pcm[o : o + CHUNK])]
        out += recognizer.finish()
    finally:
        recognizer.close()
    return [h for h in out if h.final]


def test_a_saved_adaptation_recognises_the_rest_as_before(
    recognizers: PocketsphinxRecognizers,
) -> None:
    pcm = speech_pcm(SECONDS)
    whole = finals(recognizers, pcm, None)
    assert len(whole) == 3 and all(h.adaptation for h in whole)
    first = whole[0]
    assert first.adaptation is not None and len(first.adaptation.split(",")) == 13
    # what a takeover replays: the audio from the first final's end (on a frame)
    base = int(first.t1 * BYTES_PER_SECOND) // FRAME_BYTES * FRAME_BYTES

    def ends(hyps: list[Hypothesis], shift: float = 0.0) -> list[tuple[str, float]]:
        return [(h.text, round(h.t1 + shift, 3)) for h in hyps]

    rest = finals(recognizers, pcm[base:], first.adaptation)
    # the same words, ending at the same moments (where an utterance starts is the
    # endpointer's, which begins listening anew at the replay)
    assert ends(rest, base / BYTES_PER_SECOND) == ends(whole[1:])
    # from the model's initial mean, the same audio is heard differently: the test has teeth
    fresh = finals(recognizers, pcm[base:], None)
    assert [h.text for h in fresh] != [h.text for h in whole[1:]]
    # and a fresh start after all that is as fresh as the first: nothing leaks between streams
    assert [h.text for h in finals(recognizers, pcm, None)] == [h.text for h in whole]
