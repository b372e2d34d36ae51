"""The bundled speech recording and its text, and word error rate against it (they ship
with the backend: `backend.speech`)."""

from __future__ import annotations

from backend.speech import (
    SAMPLES,
    SPEECH_TXT,
    SPEECH_WAV,
    reference_words,
    speech_pcm,
    wer,
    word_errors,
    words,
)
from pipeline.audio import BYTES_PER_SECOND

__all__ = [
    "BYTES_PER_SECOND",
    "SAMPLES",
    "SPEECH_TXT",
    "SPEECH_WAV",
    "reference_words",
    "speech_pcm",
    "wer",
    "word_errors",
    "words",
]
