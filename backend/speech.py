"""The speech recording shipped with the embedded backend, its text, and word error rate
against it: what a demo, a notebook or a test needs to judge a transcript."""

from __future__ import annotations

import re
import wave
from pathlib import Path

from pipeline.audio import FRAME_BYTES, FRAMES_PER_SECOND

SAMPLES = Path(__file__).resolve().parent / "samples"
SPEECH_WAV = SAMPLES / "speech.wav"  # 46.8 s of English, 16 kHz mono PCM16
SPEECH_TXT = SAMPLES / "speech.txt"  # what it says, one sentence a line


def speech_pcm(seconds: float | None = None) -> bytes:
    """PCM16 of the recording (its first `seconds`, cut on a 20 ms frame)."""
    with wave.open(str(SPEECH_WAV), "rb") as wav:
        pcm = wav.readframes(wav.getnframes())
    if seconds is not None:
        pcm = pcm[: round(seconds * FRAMES_PER_SECOND) * FRAME_BYTES]
    return pcm


def words(text: str) -> list[str]:
    """Lower-case words without punctuation (apostrophes kept: "we've")."""
    return re.findall(r"[a-z']+", text.lower())


def reference_words() -> list[str]:
    return words(SPEECH_TXT.read_text())


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    """Substitutions + deletions + insertions: the edit distance between word lists."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def wer(reference: list[str], hypothesis: list[str]) -> float:
    """Word error rate: word errors per reference word."""
    return word_errors(reference, hypothesis) / max(1, len(reference))
