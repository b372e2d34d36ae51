"""Audio sources as observables of frames: a synthetic tone and WAV files.

Every source yields 16 kHz mono int16 `AudioFrame`s numbered from 0, each cut from the
recording as it leaves (`operators.rechunk.Frames`). With `realtime=True` frames leave
at wall-clock pace (`operators.pace.paced` on the given scheduler), and a number plays
that many times faster (`realtime=4.0`); with `realtime=False` they leave as fast as
the consuming session takes them (see `pipeline.flow`).
"""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.scheduler import TimeoutScheduler

from operators.clock import seconds_of
from operators.pace import paced
from operators.rechunk import Frames
from pipeline.audio import (
    DEFAULT_FRAME_MS,
    SAMPLE_RATE,
    AudioFrame,
    Converter,
    Samples,
    to_int16,
)
from pipeline.flow import current_demand
from pipeline.loop_scheduler import TIMER_GRID_S

# Real-time frames may leave up to TIMER_GRID_S late so that the paced sources of many
# sessions share timer wake-ups (operators.ticker): with 5 ms, N sessions cost four loop
# turns per 20 ms frame instead of N. Measured at N=50 (benchmarks/sessions.py): CPU per
# session 0.70% -> 0.50% of a core, capture-to-arrival lag p50 1 -> 4 ms, p99 3 -> 7 ms.
# Frames between yields to the loop when running unpaced. Each yield is a turn of the
# writer (a wake-up, a corked burst released: a transmission) and of this task: 128 frames
# (2.6 s of audio, well inside the flow window) cost 13-16% less CPU per frame than 32
# (benchmarks/throughput.py's pipeline arm, the two alternated in one process).
_YIELD_EVERY = 128
_ASK_EVERY = 8  # frames between looks at the demand (it bounds a window of hundreds)
_WIDTHS: dict[int, np.dtype[np.integer]] = {
    1: np.dtype(np.uint8),
    2: np.dtype("<i2"),
    4: np.dtype("<i4"),
}


def tone(
    freq: float = 440.0,
    seconds: float = 1.0,
    *,
    amplitude: float = 0.3,
    source: str = "system",
    frame_ms: int = DEFAULT_FRAME_MS,
    realtime: bool | float = True,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[AudioFrame]:
    """A sine tone, for demos and tests."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    samples = to_int16(amplitude * np.sin(2 * np.pi * freq * t))
    return from_samples(
        samples, source=source, frame_ms=frame_ms, realtime=realtime, scheduler=scheduler
    )


def read_wav(path: str | Path) -> Samples:
    """A PCM WAV file of any rate, channel count and sample width, as 16 kHz mono int16."""
    try:
        with wave.open(str(path), "rb") as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{path}: not a PCM WAV file ({exc})") from exc
    if width == 3:  # 24-bit: widen to int32 by placing the bytes in the high end
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        wide = np.zeros((len(triples), 4), dtype=np.uint8)
        wide[:, 1:] = triples
        data: npt.NDArray[np.integer] = wide.view("<i4").reshape(-1)
    elif width in _WIDTHS:
        data = np.frombuffer(raw, dtype=_WIDTHS[width])
    else:
        raise ValueError(f"{path}: unsupported sample width {width * 8} bits")
    return Converter(rate, channels).convert(data.reshape(-1, channels), last=True)


def wav_file(
    path: str | Path,
    *,
    realtime: bool | float = True,
    source: str = "system",
    frame_ms: int = DEFAULT_FRAME_MS,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[AudioFrame]:
    """Frames of a WAV file (read into memory when subscribed)."""

    def factory(_: abc.SchedulerBase) -> Observable[AudioFrame]:
        return from_samples(
            read_wav(path), source=source, frame_ms=frame_ms, realtime=realtime, scheduler=scheduler
        )

    return reactivex.defer(factory)


def from_samples(
    samples: Samples,
    *,
    source: str = "system",
    frame_ms: int = DEFAULT_FRAME_MS,
    realtime: bool | float = True,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[AudioFrame]:
    """Frames of an in-memory 16 kHz mono recording, each cut when it leaves."""
    frames = Frames(samples, frame_ms, source)
    if realtime is not False:
        speed = 1.0 if realtime is True else float(realtime)
        if speed <= 0:
            raise ValueError(f"realtime speed must be positive, got {realtime}")
        frame_s = frames.size / SAMPLE_RATE

        def due(seq: int) -> float:  # the frame's end, as `AudioFrame.end` computes it
            return (seq + 1) * frame_s / speed

        # frame `seq` cut as it leaves, stamped with the time it leaves: its capture time
        return paced(range(len(frames)), due, scheduler, granularity=TIMER_GRID_S, stamp=frames.cut)
    return _on_demand(frames, scheduler)


def _on_demand(frames: Frames, scheduler: abc.SchedulerBase | None) -> Observable[AudioFrame]:
    def subscribe(
        observer: abc.ObserverBase[AudioFrame], sub_scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        now = seconds_of(scheduler or sub_scheduler or TimeoutScheduler.singleton())
        demand = current_demand()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if demand is None or loop is None:
            for seq in range(len(frames)):
                observer.on_next(frames.cut(seq, now()))
            observer.on_completed()
            return Disposable()

        async def produce() -> None:
            at = now()
            for seq in range(len(frames)):
                if seq % _ASK_EVERY == 0 and not demand.ready:
                    await demand.wait()
                    at = now()
                elif seq % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                    at = now()
                # frames released in one turn of the loop share its time
                observer.on_next(frames.cut(seq, at))
            observer.on_completed()

        task = loop.create_task(produce())

        def cancel() -> None:
            task.cancel()

        return Disposable(cancel)

    return reactivex.create(subscribe)
