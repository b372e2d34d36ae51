"""Live capture from an audio input device (PortAudio, through sounddevice) as frames.

PortAudio calls back on its own thread. Each block is copied there and handed to the
asyncio loop with `call_soon_threadsafe`; on the loop it is converted to 16 kHz mono
(soxr, via `Converter`) and cut into exact frames by `rechunk`. Callbacks, not blocking
reads: a read can hang for good when the sound server dies, a callback stream just goes
quiet — which a watchdog on the scheduler turns into an `AudioDeviceError`.

sounddevice is imported on first use, so the rest of the library (files, tones, the
backend, the demo) works on machines without PortAudio.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt
import reactivex
from loguru import logger
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.scheduler.eventloop import AsyncIOScheduler

from operators.rechunk import rechunk
from pipeline.audio import (
    DEFAULT_FRAME_MS,
    SAMPLE_RATE,
    AudioBlock,
    AudioFrame,
    Converter,
    check_source,
    frame_samples,
)
from pipeline.errors import AudioDeviceError

DeviceSpec = int | str | None

NO_PORTAUDIO = (
    "the PortAudio library is not installed, so no audio device can be opened; "
    "install it (Debian/Ubuntu: apt-get install libportaudio2, macOS: brew install portaudio)"
)
NO_DEVICES = (
    "no audio input device found: no sound server is running, or the machine has no "
    "capture device; start a sound server (e.g. `pulseaudio --start`) before starting "
    "this program, or attach an input device"
)
PICK_ONE = "pick one by name (any unique part of it) or index with --device"

_open_streams = 0  # streams of this module that are open: PortAudio may not be re-scanned


@dataclass(frozen=True, slots=True)
class InputDevice:
    """An audio input, as `list_devices()` reports it."""

    index: int
    name: str
    hostapi: str
    channels: int
    samplerate: float
    default: bool = False

    def describe(self) -> str:
        mark = "*" if self.default else " "
        return (
            f"{mark} {self.index:>2}  {self.name} ({self.hostapi}, "
            f"{self.channels} ch, {self.samplerate:.0f} Hz)"
        )


def sounddevice_module() -> ModuleType:
    """`sounddevice`, imported on first use; a missing PortAudio is an `AudioDeviceError`."""
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise AudioDeviceError(NO_PORTAUDIO) from exc
    module: ModuleType = sounddevice
    return module


def list_devices() -> list[InputDevice]:
    """The input devices PortAudio sees; the default one is marked `default=True`.

    An empty list is answered by scanning again once: PortAudio lists devices when it is
    loaded, so a sound server started after that would otherwise stay invisible.
    """
    sd = sounddevice_module()
    devices = _inputs(sd)
    if not devices and _open_streams == 0:
        _rescan(sd)
        devices = _inputs(sd)
    return devices


def _inputs(sd: Any) -> list[InputDevice]:
    default = _default_input(sd)
    hostapis = [api["name"] for api in sd.query_hostapis()]
    return [
        InputDevice(
            index=index,
            name=info["name"],
            hostapi=hostapis[info["hostapi"]],
            channels=info["max_input_channels"],
            samplerate=info["default_samplerate"],
            default=index == default,
        )
        for index, info in enumerate(sd.query_devices())
        if info["max_input_channels"] > 0
    ]


def _default_input(sd: Any) -> int:
    try:
        return int(sd.default.device[0])
    except (TypeError, ValueError, IndexError):
        return -1


def _rescan(sd: Any) -> None:
    """Re-initialise PortAudio so it lists devices again (only with no stream open)."""
    logger.debug("no input devices; asking PortAudio to scan again")
    try:
        sd._terminate()
        sd._initialize()
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"PortAudio could not be re-initialised: {exc}") from exc


def find_device(device: DeviceSpec = None) -> InputDevice:
    """The input device for `device`: None for the default, an index, or a name.

    A name matches any device whose name contains it (case-insensitive; words may be in
    any order, as sounddevice matches them). Raises `AudioDeviceError` naming what is
    available when nothing, or more than one device, matches.
    """
    sd = sounddevice_module()
    devices = list_devices()
    if not devices:
        raise AudioDeviceError(NO_DEVICES)
    available = "; ".join(f"{d.index}: {d.name}" for d in devices)
    try:
        info = sd.query_devices(device, "input")
    except ValueError as exc:  # no match, several matches, or not an input
        reason = str(exc).splitlines()[0].rstrip(":")
        raise AudioDeviceError(
            f"no single input device {device!r} ({reason}); available: {available}; {PICK_ONE}"
        ) from exc
    except sd.PortAudioError as exc:  # an index that does not exist, or no default input
        what = "no default input device" if device is None else f"no input device {device!r}"
        raise AudioDeviceError(f"{what}; available: {available}; {PICK_ONE}") from exc
    return next(d for d in devices if d.name == info["name"] and d.index == info["index"])


def microphone(
    device: DeviceSpec = None,
    source: str = "mic",
    *,
    frame_ms: int = DEFAULT_FRAME_MS,
    channels: int | None = None,
    samplerate: float | None = None,
    blocksize: int | None = None,
    stall_timeout: float = 5.0,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[AudioFrame]:
    """Frames captured live from an input device, from subscription until disposal.

    The device records at its own rate and channel count (`samplerate`/`channels`
    override them; at most two channels by default) and frames come out as 16 kHz mono
    with `seq` counting from 0. PortAudio calls back once per `blocksize` device frames:
    by default one frame's worth (fewer, larger hand-offs than PortAudio's own choice,
    which `blocksize=0` asks for). Subscribe on a running asyncio loop. The stream fails with
    `AudioDeviceError` when the device cannot be opened, or when it delivers nothing for
    `stall_timeout` seconds (the sound server went away). Disposal stops and closes it.
    """
    check_source(source)
    if stall_timeout <= 0:
        raise ValueError("stall_timeout must be positive")
    seconds_per_block = frame_samples(frame_ms) / SAMPLE_RATE
    blocks = _device_blocks(
        device, channels, samplerate, blocksize, seconds_per_block, stall_timeout, scheduler
    )
    return blocks.pipe(rechunk(frame_ms, source))


def _device_blocks(
    device: DeviceSpec,
    channels: int | None,
    samplerate: float | None,
    blocksize: int | None,
    seconds_per_block: float,
    stall_timeout: float,
    scheduler: abc.SchedulerBase | None,
) -> Observable[AudioBlock]:
    def subscribe(
        observer: abc.ObserverBase[AudioBlock], sub_scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            observer.on_error(RuntimeError("microphone() must be subscribed on a running loop"))
            return Disposable()
        clock = scheduler or sub_scheduler or AsyncIOScheduler(loop)
        try:
            capture = _Capture(
                observer,
                loop,
                clock,
                device,
                channels,
                samplerate,
                blocksize,
                seconds_per_block,
                stall_timeout,
            )
        except AudioDeviceError as exc:
            observer.on_error(exc)
            return Disposable()
        return capture.disposable

    return reactivex.create(subscribe)


class _Capture:
    """One open input stream and its hand-off to the loop."""

    def __init__(
        self,
        observer: abc.ObserverBase[AudioBlock],
        loop: asyncio.AbstractEventLoop,
        clock: abc.SchedulerBase,
        device: DeviceSpec,
        channels: int | None,
        samplerate: float | None,
        blocksize: int | None,
        seconds_per_block: float,
        stall_timeout: float,
    ) -> None:
        global _open_streams
        self.observer, self.loop, self.clock = observer, loop, clock
        self.stall_timeout = stall_timeout
        self.done = False
        self.overflows = 0
        sd = sounddevice_module()
        self.sd = sd
        found = find_device(device)
        channel_count = channels or min(found.channels, 2)
        rate = samplerate or found.samplerate
        if blocksize is None:
            blocksize = round(rate * seconds_per_block)
        self.converter = Converter(round(rate), channel_count)
        self.log = logger.bind(device=found.name)
        try:
            self.stream = sd.InputStream(
                device=found.index,
                channels=channel_count,
                samplerate=rate,
                dtype="float32",
                blocksize=blocksize,
                callback=self._callback,
                finished_callback=self._finished,
            )
        except (sd.PortAudioError, ValueError) as exc:
            raise AudioDeviceError(
                f"cannot open input device {found.index} ({found.name}) at {rate:.0f} Hz, "
                f"{channel_count} ch: {exc}; {PICK_ONE}, or start the sound server"
            ) from exc
        _open_streams += 1
        self.last_block = self._now()
        self.watchdog = reactivex.interval(stall_timeout / 4, clock).subscribe(self._check_stall)
        self.disposable = Disposable(self.close)
        try:
            self.stream.start()
        except sd.PortAudioError as exc:
            self.close()
            raise AudioDeviceError(f"cannot start input device {found.name}: {exc}") from exc
        self.log.info("capturing from {} ({:.0f} Hz, {} ch)", found.name, rate, channel_count)

    def _now(self) -> float:
        return self.clock.to_seconds(self.clock.now)

    # -- PortAudio's thread ---------------------------------------------------------

    def _callback(self, indata: npt.NDArray[np.float32], frames: int, _: Any, status: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(
                self._on_block, indata.copy(), bool(status.input_overflow)
            )
        except RuntimeError:  # the loop is closed: nobody listens any more
            raise self.sd.CallbackAbort from None

    def _finished(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self.loop.call_soon_threadsafe(self._on_finished)

    # -- the loop -------------------------------------------------------------------

    def _on_block(self, data: npt.NDArray[np.float32], overflowed: bool) -> None:
        if self.done:
            return
        now = self._now()
        self.last_block = now
        if overflowed:
            self.overflows += 1
            self.log.warning("input overflow: the device dropped audio ({} so far)", self.overflows)
        samples = self.converter.convert(data)
        if len(samples):
            self.observer.on_next(AudioBlock(samples, captured_at=now))

    def _on_finished(self) -> None:
        self._fail("the audio stream stopped by itself (the device or sound server went away)")

    def _check_stall(self, _: int) -> None:
        if not self.done and self._now() - self.last_block > self.stall_timeout:
            self._fail(
                f"no audio from the input device for {self.stall_timeout:.1f} s: the sound "
                "server or device stopped; restart it and start capturing again"
            )

    def _fail(self, reason: str) -> None:
        if self.done:
            return
        self.close()
        self.observer.on_error(AudioDeviceError(reason))

    def close(self) -> None:
        """Stop and close the stream (idempotent); blocks still on their way are ignored.

        `abort`, not `stop`: stopping waits for PortAudio's thread to drain, and that wait
        can hang when the sound server died under it; aborting cancels the thread.
        """
        global _open_streams
        if self.done:
            return
        self.done = True
        self.watchdog.dispose()
        try:
            self.stream.abort(ignore_errors=True)
        finally:
            self.stream.close(ignore_errors=True)
            _open_streams -= 1
            self.log.info("capture stopped")
