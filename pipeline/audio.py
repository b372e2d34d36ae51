"""Audio frames (defined in `operators.audio`) and the conversion into their format."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

from operators.audio import (
    AUDIO_FORMAT,
    BYTES_PER_SECOND,
    CHANNELS,
    DEFAULT_FRAME_MS,
    FRAME_BYTES,
    FRAME_SAMPLES,
    FRAMES_PER_SECOND,
    SAMPLE_BYTES,
    SAMPLE_RATE,
    SOURCES,
    AudioBlock,
    AudioFrame,
    Samples,
    check_source,
    frame_samples,
    new_frame,
)

__all__ = [
    "AUDIO_FORMAT",
    "BYTES_PER_SECOND",
    "CHANNELS",
    "DEFAULT_FRAME_MS",
    "FRAMES_PER_SECOND",
    "FRAME_BYTES",
    "FRAME_SAMPLES",
    "SAMPLE_BYTES",
    "SAMPLE_RATE",
    "SOURCES",
    "AudioBlock",
    "AudioFrame",
    "Converter",
    "Samples",
    "check_source",
    "frame_samples",
    "new_frame",
    "to_int16",
]


def to_int16(samples: npt.NDArray[np.floating] | npt.NDArray[np.integer]) -> Samples:
    """Float audio in [-1, 1] (or integer PCM of any width) to clipped int16."""
    if np.issubdtype(samples.dtype, np.integer):
        info = np.iinfo(samples.dtype.type)  # type: ignore[type-var]
        if info.bits == 16 and info.min < 0:
            return samples.astype(np.int16, copy=False)
        scaled = samples.astype(np.float64)
        if info.min == 0:  # unsigned 8-bit WAV is offset binary
            scaled -= (info.max + 1) / 2
            scaled /= (info.max + 1) / 2
        else:
            scaled /= -float(info.min)
        return to_int16(scaled)
    return np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)


class Converter:
    """Streams audio of any rate and channel count into 16 kHz mono int16.

    Downmixing averages the channels; resampling is soxr's, with its state kept
    between blocks so block edges leave no clicks.
    """

    def __init__(self, rate: int, channels: int) -> None:
        if rate <= 0 or channels <= 0:
            raise ValueError(f"bad input format: {rate} Hz, {channels} channels")
        self.rate = rate
        self.channels = channels
        self._stream = (
            None
            if rate == SAMPLE_RATE
            else soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")
        )

    def convert(self, block: npt.NDArray[np.generic], *, last: bool = False) -> Samples:
        """`block` is (frames,) or (frames, channels), integer PCM or float in [-1, 1]."""
        data = np.asarray(block)
        if data.ndim == 2:
            if data.shape[1] != self.channels:
                raise ValueError(f"expected {self.channels} channels, got {data.shape[1]}")
            if np.issubdtype(data.dtype, np.integer):
                data = to_int16(data).astype(np.float32) / 32767.0
            mono = data.astype(np.float32).mean(axis=1) if self.channels > 1 else data[:, 0]
        else:
            mono = data
        if self._stream is None:
            return to_int16(mono)
        if np.issubdtype(mono.dtype, np.integer):
            mono = to_int16(mono).astype(np.float32) / 32767.0
        resampled = self._stream.resample_chunk(mono.astype(np.float32, copy=False), last=last)
        return to_int16(resampled)
