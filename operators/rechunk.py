"""Cut blocks of any length into exact frames, numbered per source."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import reactivex
from reactivex import Observable, abc

from operators.audio import SAMPLE_RATE, AudioBlock, AudioFrame, check_source, frame_samples


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
                    padded = np.zeros(size, dtype=np.int16)
                    padded[: len(carry)] = carry
                    carry = np.zeros(0, dtype=np.int16)
                    observer.on_next(AudioFrame(padded, source, seq, last_time))
                    seq += 1
                observer.on_completed()

            return blocks.subscribe(on_next, observer.on_error, on_completed, scheduler=scheduler)

        return reactivex.create(subscribe)

    return operator
