"""Level metering: RMS and peak in dBFS, per frame or per UI tick and source.

A meter is for eyes, so by default it reports at most once per `interval` per source:
the window's RMS (the power mean of its frames) and its peak, so that a short click in
the window still shows. The windows come from `buffer_with_time` on the scheduler, so
tests run in virtual time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import reactivex
from reactivex import GroupedObservable, Observable, abc
from reactivex import operators as ops
from reactivex.scheduler import TimeoutScheduler

from pipeline.audio import AudioFrame, Samples
from pipeline.status import AudioLevel

FULL_SCALE = 32768.0
SILENCE_DBFS = -120.0  # the floor: digital silence reads as this, never -inf
DEFAULT_INTERVAL = 0.1  # seconds: at most 10 level events per second and source


def dbfs(amplitude: float) -> float:
    """An amplitude relative to int16 full scale, in dB, floored at `SILENCE_DBFS`."""
    if amplitude <= 0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 20.0 * math.log10(amplitude / FULL_SCALE))


def power(samples: Samples) -> tuple[float, float]:
    """(mean square, peak magnitude) of int16 samples — the additive parts of a level."""
    if not len(samples):
        return 0.0, 0.0
    wide = samples.astype(np.float64)
    return float(np.mean(wide * wide)), float(np.max(np.abs(wide)))


def frame_level(frame: AudioFrame, at: float | None = None) -> AudioLevel:
    """The level of one frame (`at` defaults to the frame's capture time)."""
    mean_square, peak = power(frame.samples)
    return AudioLevel(
        at=frame.captured_at if at is None else at,
        source=frame.source,
        rms_dbfs=dbfs(math.sqrt(mean_square)),
        peak_dbfs=dbfs(peak),
    )


def window_level(source: str, at: float, powers: Sequence[tuple[float, float]]) -> AudioLevel:
    """The level of consecutive equal-length frames given their `power`s."""
    mean_square = sum(p for p, _ in powers) / len(powers)
    peak = max(p for _, p in powers)
    return AudioLevel(
        at=at, source=source, rms_dbfs=dbfs(math.sqrt(mean_square)), peak_dbfs=dbfs(peak)
    )


def _source_of(frame: AudioFrame) -> str:
    return frame.source


def level_meter(
    interval: float = DEFAULT_INTERVAL, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[AudioFrame]], Observable[AudioLevel]]:
    """Frames in, `AudioLevel` status events out.

    With `interval > 0`, one event per source per `interval` seconds in which that source
    had frames (stamped with the scheduler's time at the window's end); with
    `interval == 0`, one event per frame (stamped with its capture time).
    """
    if interval < 0:
        raise ValueError("interval must be >= 0")

    def operator(frames: Observable[AudioFrame]) -> Observable[AudioLevel]:
        if interval == 0:
            return frames.pipe(ops.map(frame_level))

        def subscribe(
            observer: abc.ObserverBase[AudioLevel], sub_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            clock = scheduler or sub_scheduler or TimeoutScheduler.singleton()

            def frame_power(frame: AudioFrame) -> tuple[float, float]:
                return power(frame.samples)

            def per_source(group: GroupedObservable[str, AudioFrame]) -> Observable[AudioLevel]:
                def level(window: list[tuple[float, float]]) -> AudioLevel:
                    return window_level(str(group.key), clock.to_seconds(clock.now), window)

                windows: Observable[list[tuple[float, float]]] = group.pipe(
                    ops.map(frame_power), ops.buffer_with_time(interval, scheduler=clock)
                )
                return windows.pipe(ops.filter(bool), ops.map(level))

            groups: Observable[GroupedObservable[str, AudioFrame]] = frames.pipe(
                ops.group_by(_source_of)
            )
            levels: Observable[AudioLevel] = groups.pipe(ops.flat_map(per_source))
            return levels.subscribe(observer, scheduler=sub_scheduler)

        return reactivex.create(subscribe)

    return operator
