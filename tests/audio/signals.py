"""Test signals, and comparing a recording with what was played."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


def align(recorded: Floats, played: Floats) -> int:
    """The offset in `recorded` at which `played` fits best (FFT cross-correlation)."""
    size = len(recorded) + len(played)
    spectrum = np.fft.rfft(recorded, size) * np.conj(np.fft.rfft(played, size))
    correlation = np.fft.irfft(spectrum, size)[: len(recorded)]
    return int(np.argmax(correlation))


def similarity(recorded: Floats, played: Floats) -> tuple[float, int]:
    """Normalised cross-correlation of `played` with the part of `recorded` it aligns to
    (1.0 = identical up to gain), and that offset. A truncated recording scores lower."""
    offset = align(recorded, played)
    segment = np.zeros(len(played))
    part = recorded[offset : offset + len(played)]
    segment[: len(part)] = part
    denominator = float(np.linalg.norm(segment) * np.linalg.norm(played))
    return (float(segment @ played) / denominator if denominator else 0.0), offset


def active_span(signal: Floats, threshold: float = 0.1) -> int:
    """Samples from the first to the last one above `threshold` x the signal's peak."""
    loud = np.flatnonzero(np.abs(signal) > threshold * np.max(np.abs(signal)))
    return int(loud[-1] - loud[0] + 1) if len(loud) else 0


def noise_wav(path: Path, seconds: float, rate: int = 44_100) -> Path:
    """Stereo noise at 44.1 kHz: every frame differs, so a lost, repeated or swapped frame
    shows, and the file goes through the same conversion as any other."""
    rng = np.random.default_rng(7)
    samples = (rng.standard_normal((round(seconds * rate), 2)) * 3000).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return path
