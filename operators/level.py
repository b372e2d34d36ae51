"""Level metering: RMS and peak in dBFS, per frame or per UI tick and source.

A meter is for eyes, so by default it reports at most once per `interval` per source:
the window's RMS (the power mean of its frames) and its peak, so that a short click in
the window still shows. Windows are ticks of the given scheduler, so tests run in
virtual time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.scheduler import TimeoutScheduler

from operators.audio import AudioFrame, Samples
from operators.clock import seconds_of
from operators.ticker import shared_ticker

FULL_SCALE = 32768.0
SILENCE_DBFS = -120.0  # the floor: digital silence reads as this, never -inf
DEFAULT_INTERVAL = 0.1  # seconds: at most 10 level events per second and source
LIVE_WINDOW = 8192  # samples (0.5 s): up to it `power` pays per numpy call; beyond, per pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Level:
    """The level of a source over a window (or one frame), stamped `at` seconds."""

    at: float
    source: str
    rms_dbfs: float
    peak_dbfs: float


def dbfs(amplitude: float) -> float:
    """An amplitude relative to int16 full scale, in dB, floored at `SILENCE_DBFS`."""
    if amplitude <= 0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 20.0 * math.log10(amplitude / FULL_SCALE))


def power(samples: Samples) -> tuple[float, float]:
    """(mean square, peak magnitude) of int16 samples — the additive parts of a level."""
    if not len(samples):
        return 0.0, 0.0
    if len(samples) <= LIVE_WINDOW:
        # a live window: numpy's per-call overhead dominates, so two calls on an int64
        # copy (exact: at most 2^30 per sample, over a hundred hours before overflow)
        wide = samples.astype(np.int64)
        return float(wide.dot(wide)) / len(wide), float(np.abs(wide).max())
    # a long window (a file read faster than real time): passes over memory dominate, so
    # no copies — the int16 samples squared into an int64 sum, the peak from min and max
    square_sum = np.einsum("i,i->", samples, samples, dtype=np.int64)
    return float(square_sum) / len(samples), float(max(int(samples.max()), -int(samples.min())))


def frame_level(frame: AudioFrame, at: float | None = None) -> Level:
    """The level of one frame (`at` defaults to the frame's capture time)."""
    mean_square, peak = power(frame.samples)
    return Level(
        at=frame.captured_at if at is None else at,
        source=frame.source,
        rms_dbfs=dbfs(math.sqrt(mean_square)),
        peak_dbfs=dbfs(peak),
    )


def window_level(source: str, at: float, chunks: Sequence[Samples]) -> Level:
    """The level of consecutive frames: the power mean of all their samples, their peak.

    Computed once per window over the frames joined, not frame by frame: numpy calls on
    every 20 ms frame would be most of the pipeline's work for a meter meant for eyes.
    """
    mean_square, peak = power(np.concatenate(chunks))
    return Level(at=at, source=source, rms_dbfs=dbfs(math.sqrt(mean_square)), peak_dbfs=dbfs(peak))


class LevelMeter:
    """Levels of the frames fed to it: one per frame (`interval` 0), or per source and
    window of `interval` seconds of `scheduler`'s time, the windows ticking from `start`.

    The state behind `level_meter`, usable on its own by a consumer that already holds
    every frame: the session feeds it beside the outbox, from one subscription to the
    source, instead of publishing the source to two chains of operators.
    """

    def __init__(
        self,
        interval: float,
        emit: Callable[[Level], None],
        scheduler: abc.SchedulerBase | None = None,
        granularity: float = 0.0,
        *,
        aligned: bool = False,
    ) -> None:
        if interval < 0:
            raise ValueError("interval must be >= 0")
        self.interval, self.emit, self.granularity = interval, emit, granularity
        self.aligned = aligned
        self._clock = scheduler or TimeoutScheduler.singleton()
        self._now = seconds_of(self._clock)
        # A window's dict and lists are emptied and used again, not made anew: made anew,
        # they would live a window long (a quarter of a second), long enough to be
        # promoted to the collector's oldest generation, in every session, every window.
        self._window: dict[str, list[Samples]] = {}  # source -> its frames' samples
        self._lists: dict[str, list[Samples]] = {}  # per source, its empty list

    def add(self, frame: AudioFrame) -> None:
        if not self.interval:
            self.emit(frame_level(frame))
            return
        chunks = self._window.get(frame.source)
        if chunks is None:
            chunks = self._lists.pop(frame.source, None)
            if chunks is None:
                chunks = []
            self._window[frame.source] = chunks
        chunks.append(frame.samples)

    def close(self) -> None:
        """Emit the levels of the window that ends now; the next one starts empty."""
        window = self._window
        if not window:
            return
        at = self._now()
        levels = [window_level(source, at, chunks) for source, chunks in window.items()]
        for source, chunks in window.items():
            chunks.clear()
            self._lists[source] = chunks
        window.clear()  # emptied before the levels go: what they bring is the next window's
        for level in levels:  # in the order the sources' frames came in this window
            self.emit(level)

    def start(self) -> abc.DisposableBase:
        """Close a window every `interval` seconds (nothing to do per frame: no timer), on
        the clock's shared ticker: with `granularity` > 0 a window may close that much
        late, and the meters of many sessions share wake-ups. `aligned` windows end at the
        ticker's origin plus multiples of `interval` (the first one may be shorter): the
        windows of every meter on the clock close in the same step, one after the other."""
        if not self.interval:
            return Disposable()
        ticker = shared_ticker(self._clock, self.granularity)
        return Disposable(ticker.every(self.interval, self.close, aligned=self.aligned))


def level_meter(
    interval: float = DEFAULT_INTERVAL, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[AudioFrame]], Observable[Level]]:
    """Frames in, `Level`s out (the session makes them `AudioLevel` status events).

    .. marble::
        :alt: level_meter

        -a-a-b-a---------a-|      (frames of sources a and b)
        [ level_meter(4)    ]
        ----A---(B,A)------(A,|)  (per window, a level for each source that had frames)

    With `interval > 0`, one event per source per `interval` seconds in which that source
    had frames (stamped with the scheduler's time at the window's end; windows start at
    subscription); with `interval == 0`, one event per frame (stamped with its capture time).
    """
    if interval < 0:
        raise ValueError("interval must be >= 0")

    def operator(frames: Observable[AudioFrame]) -> Observable[Level]:
        def subscribe(
            observer: abc.ObserverBase[Level], sub_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            meter = LevelMeter(interval, observer.on_next, scheduler or sub_scheduler)

            def on_completed() -> None:
                meter.close()
                observer.on_completed()

            ticking = meter.start()
            upstream = frames.subscribe(
                meter.add, observer.on_error, on_completed, scheduler=sub_scheduler
            )
            return CompositeDisposable(upstream, ticking)

        return reactivex.create(subscribe)

    return operator
