"""The bundled recording is what the demo and the tests rely on."""

from __future__ import annotations

import wave

from pipeline.cli.demo import bundled_recording
from tests.asr.speech import SPEECH_TXT, SPEECH_WAV, reference_words, wer, word_errors


def test_recording_format_and_length() -> None:
    with wave.open(str(SPEECH_WAV), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16_000, 1, 2)
        frames = wav.getnframes()
    assert frames / 16_000 >= 40.0
    assert frames % 320 == 0  # whole 20 ms frames
    assert SPEECH_WAV.stat().st_size < 2_000_000


def test_text_has_several_sentences() -> None:
    sentences = SPEECH_TXT.read_text().splitlines()
    assert len(sentences) >= 5
    assert len(reference_words()) >= 80


def test_the_demo_finds_the_recording() -> None:
    assert bundled_recording() == SPEECH_WAV


def test_word_errors_count_edits() -> None:
    assert word_errors(["a", "b", "c"], ["a", "b", "c"]) == 0
    assert word_errors(["a", "b", "c"], ["a", "x", "c"]) == 1  # substitution
    assert word_errors(["a", "b", "c"], ["a", "c"]) == 1  # deletion
    assert word_errors(["a", "b"], ["a", "b", "b", "b"]) == 2  # insertions
    assert word_errors(["a", "b"], []) == 2
    assert wer(["a", "b", "c", "d"], ["a", "b", "x", "d"]) == 0.25
