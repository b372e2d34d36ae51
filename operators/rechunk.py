"""Cut blocks of any length into exact frames, numbered per source."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import overload

import numpy as np
import reactivex
from reactivex import Observable, abc

from operators.audio import (
    SAMPLE_RATE,
    AudioBlock,
    AudioFrame,
    Samples,
    check_source,
    frame_samples,
    new_frame,
)


def rechunk(
    frame_ms: int = 20, source: str = "system", *, pad_last: bool = True
) -> Callable[[Observable[AudioBlock]], Observable[AudioFrame]]:
    """Blocks in, frames of exactly `frame_ms` out, with `seq` counting from 0.

    .. marble::
        :alt: rechunk

        -A-----B-|                (A: 50 ms of audio, B: 30 ms)
        [ rechunk(20) ]
        -(0,1)-(2,3)-(4|)         (frames by seq; 4 padded with silence)

    A frame's `captured_at` is the time its last sample was captured, derived from the
    block's. At completion a partial frame is padded with silence (`pad_last`), so the
    tail of a recording is sent rather than lost.
    """
    size = frame_samples(frame_ms)
    check_source(source)

    def operator(blocks: Observable[AudioBlock]) -> Observable[AudioFrame]:
        def subscribe(
            observer: abc.ObserverBase[AudioFrame], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            carry = np.zeros(0, dtype=np.int16)
            seq = 0
            last_time = 0.0

            def on_next(block: AudioBlock) -> None:
                nonlocal carry, seq, last_time
                data = block.samples if not len(carry) else np.concatenate((carry, block.samples))
                whole = len(data) - len(data) % size
                for end in range(size, whole + 1, size):
                    lag = (len(data) - end) / SAMPLE_RATE
                    frame = AudioFrame(data[end - size : end], source, seq, block.captured_at - lag)
                    seq += 1
                    observer.on_next(frame)
                carry = data[whole:].copy() if whole < len(data) else np.zeros(0, dtype=np.int16)
                last_time = block.captured_at

            def on_completed() -> None:
                nonlocal carry, seq
                if pad_last and len(carry):
                    padded = _padded(carry, size)
                    carry = np.zeros(0, dtype=np.int16)
                    observer.on_next(AudioFrame(padded, source, seq, last_time))
                    seq += 1
                observer.on_completed()

            return blocks.subscribe(on_next, observer.on_error, on_completed, scheduler=scheduler)

        return reactivex.create(subscribe)

    return operator


class Frames(Sequence[AudioFrame]):
    """The frames `rechunk` cuts from one in-memory recording, each cut when it is read.

    `frames[n]` is frame `seq` n of `source` (its `captured_at` 0.0: a player stamps it
    when it leaves); the last one padded with silence. Nothing is cut ahead, so a paced
    player (`operators.pace.paced`) holds the frame leaving, not the hour-long recording.
    """

    def __init__(self, samples: Samples, frame_ms: int = 20, source: str = "system") -> None:
        self.samples = samples
        self.source = check_source(source)
        self.size = frame_samples(frame_ms)

    def __len__(self) -> int:
        return -(-len(self.samples) // self.size)

    def __iter__(self) -> Iterator[AudioFrame]:
        for seq in range(len(self)):
            yield self.cut(seq)

    @overload
    def __getitem__(self, index: int) -> AudioFrame: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[AudioFrame]: ...

    def __getitem__(self, index: int | slice) -> AudioFrame | Sequence[AudioFrame]:
        if isinstance(index, slice):
            return [self.cut(seq) for seq in range(*index.indices(len(self)))]
        seq = index + len(self) if index < 0 else index
        if not 0 <= seq < len(self):
            raise IndexError(f"frame {index} of {len(self)}")
        return self.cut(seq)

    def cut(self, seq: int, captured_at: float = 0.0) -> AudioFrame:
        """Frame `seq` (0 <= seq < len), stamped `captured_at`: what a player calls as each
        frame leaves, without a second frame to stamp the first."""
        size = self.size
        cut = self.samples[seq * size : (seq + 1) * size]
        if len(cut) < size:
            cut = _padded(cut, size)
        return new_frame(cut, self.source, seq, captured_at)


def _padded(samples: Samples, size: int) -> Samples:
    padded = np.zeros(size, dtype=np.int16)
    padded[: len(samples)] = samples
    return padded
