"""PocketsphinxRecognizer on the bundled recording, in this process (real pocketsphinx)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest

from backend.asr import Hypothesis
from backend.pocketsphinx_asr import PARTIAL_INTERVAL_S, PocketsphinxRecognizer, build_decoder
from pipeline.audio import FRAME_BYTES
from tests.asr.speech import (
    BYTES_PER_SECOND,
    SPEECH_TXT,
    reference_words,
    speech_pcm,
    wer,
    words,
)

FRAME = FRAME_BYTES


class AudioClock:
    """Virtual time: the seconds of audio fed so far, as if it arrived in real time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Run:
    audio_s: float
    results: list[tuple[float, Hypothesis]]  # (clock when returned, hypothesis)

    @property
    def finals(self) -> list[Hypothesis]:
        return [hyp for _, hyp in self.results if hyp.final]

    @property
    def partials(self) -> list[tuple[float, Hypothesis]]:
        return [(at, hyp) for at, hyp in self.results if not hyp.final]


@pytest.fixture(scope="module")
def decoder() -> Any:
    """One decoder for the module, reused by every recogniser as the worker processes do."""
    return build_decoder()


def feed(decoder: Any, pcm: bytes, chunk: int = FRAME) -> Run:
    clock = AudioClock()
    recognizer = PocketsphinxRecognizer(lambda: decoder, clock=clock)
    results: list[tuple[float, Hypothesis]] = []
    try:
        for offset in range(0, len(pcm), chunk):
            piece = pcm[offset : offset + chunk]
            clock.now += len(piece) / BYTES_PER_SECOND
            results.extend((clock.now, hyp) for hyp in recognizer.process(piece))
        results.extend((clock.now, hyp) for hyp in recognizer.finish())
    finally:
        recognizer.close()
    return Run(len(pcm) / BYTES_PER_SECOND, results)


@pytest.fixture(scope="module")
def whole(decoder: Any) -> Run:
    """The whole recording fed in 20 ms frames, with a clock that follows the audio."""
    return feed(decoder, speech_pcm())


def test_one_final_per_sentence_with_sane_times(whole: Run) -> None:
    sentences = len(SPEECH_TXT.read_text().splitlines())
    finals = whole.finals
    assert len(finals) == sentences
    for final in finals:
        assert 0.0 <= final.t0 < final.t1 <= whole.audio_s
        assert final.confidence is not None
        assert 0.0 < final.confidence <= 1.0
        assert final.text
    # in time order and not overlapping: each utterance ends before the next begins
    for before, after in itertools.pairwise(finals):
        assert before.t1 <= after.t0


def test_finals_match_the_text(whole: Run) -> None:
    hypothesis = words(" ".join(final.text for final in whole.finals))
    assert wer(reference_words(), hypothesis) <= 0.15


def test_partials_at_most_four_a_second(whole: Run) -> None:
    stamps = [at for at, _ in whole.partials]
    assert len(stamps) >= len(whole.finals)  # every sentence lasts > 2 s: partials came
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    assert min(gaps) >= PARTIAL_INTERVAL_S - 1e-9
    for start in stamps:
        assert sum(start <= at < start + 1.0 for at in stamps) <= 4


def test_partials_belong_to_the_utterance_in_progress(whole: Run) -> None:
    finals = whole.finals
    for _, partial in whole.partials:
        owner = next(f for f in finals if f.t0 == partial.t0)
        assert partial.t1 <= owner.t1 + 0.5  # reported before the utterance ended
        assert partial.confidence is None


def test_chunking_does_not_change_the_result(decoder: Any) -> None:
    """Odd-sized pieces (not whole 20 ms frames) give the same finals as frames."""
    pcm = speech_pcm(10.0)
    by_frame = feed(decoder, pcm).finals
    odd = feed(decoder, pcm, chunk=1234).finals
    assert [(f.text, f.t0, f.t1) for f in odd] == [(f.text, f.t0, f.t1) for f in by_frame]
    assert len(by_frame) == 2


def test_finish_ends_the_utterance_in_progress(decoder: Any) -> None:
    """Audio cut mid-sentence: `finish` gives its final, ending where the audio ends."""
    pcm = speech_pcm(3.0)  # the first sentence runs from ~0.7 s to ~4.5 s
    run = feed(decoder, pcm)
    assert len(run.finals) == 1
    final = run.finals[0]
    assert 0.3 < final.t0 < 1.0
    assert final.t1 == pytest.approx(3.0, abs=0.05)
    assert words(final.text)[:3] == ["the", "weather", "is"]


def test_silence_needs_no_decoder() -> None:
    """A source that never speaks never takes a decoder (nor its ~90 MB)."""

    def no_decoder() -> Any:
        raise AssertionError("a decoder was asked for on silence")

    recognizer = PocketsphinxRecognizer(no_decoder)
    assert recognizer.process(bytes(5 * BYTES_PER_SECOND)) == []
    assert recognizer.finish() == []
    recognizer.close()


def test_audio_after_finish_starts_a_new_utterance_on_the_same_timeline(decoder: Any) -> None:
    """A graceful drain finishes a session that may resume: the audio after `finish` is
    recognised, its times counted from the start of the stream, not from the drain."""
    pcm = speech_pcm()
    cut = 5 * BYTES_PER_SECOND  # the drain falls inside the second sentence
    recognizer = PocketsphinxRecognizer(lambda: decoder)
    before = recognizer.process(pcm[:cut]) + recognizer.finish()
    after = recognizer.process(pcm[cut : 2 * cut]) + recognizer.finish()
    recognizer.close()
    finals_before = [hyp for hyp in before if hyp.final]
    finals_after = [hyp for hyp in after if hyp.final]
    assert finals_before and finals_after
    assert max(hyp.t1 for hyp in finals_before) <= 5.0
    assert all(5.0 <= hyp.t0 <= hyp.t1 <= 10.0 for hyp in finals_after)
