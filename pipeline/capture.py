"""Live capture from an audio input device (PortAudio, through sounddevice) as frames.

PortAudio calls back on its own thread. Each block is copied there and handed to the
asyncio loop with `call_soon_threadsafe`; on the loop it is converted to 16 kHz mono
(soxr, via `Converter`) and cut into exact frames by `rechunk`.

Nothing here may block the loop, even when the sound server dies or hangs: capture uses
callbacks, not blocking reads (a read can wait forever); the device is opened and closed
on threads of their own (both talk to the server); and watchdogs on the scheduler turn a
device that never starts, or goes quiet, into an `AudioDeviceError`.

sounddevice is imported on first use, so the rest of the library (files, tones, the
backend, the demo) works on machines without PortAudio.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import threading
from collections.abc import Iterator
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

from operators.clock import seconds_of
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

_open_streams = 0  # streams of this module not yet closed: PortAudio may not be re-scanned
_exit_hook = False


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
    global _exit_hook
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise AudioDeviceError(NO_PORTAUDIO) from exc
    if not _exit_hook:  # registered after sounddevice's own handler, so it runs before it
        atexit.register(_join_closers)
        _exit_hook = True
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


@dataclass(frozen=True, slots=True)
class CaptureOptions:
    """How `microphone()` opens its device (see there)."""

    device: DeviceSpec = None
    channels: int | None = None
    samplerate: float | None = None
    blocksize: int | None = None
    block_seconds: float = DEFAULT_FRAME_MS / 1000
    start_timeout: float = 10.0
    stall_timeout: float = 5.0
    pulse_source: str | None = None


_pulse_env_lock = threading.Lock()  # PULSE_SOURCE is process-wide: one opener at a time


@contextlib.contextmanager
def pulse_source_set(name: str | None) -> Iterator[None]:
    """`PULSE_SOURCE=name` while a stream opens (the sound server reads it then), so two
    streams of one process can record two different PulseAudio/PipeWire sources."""
    with _pulse_env_lock:  # also without a name: no other opener changes it meanwhile
        if name is None:
            yield
            return
        before = os.environ.get("PULSE_SOURCE")
        os.environ["PULSE_SOURCE"] = name
        try:
            yield
        finally:
            if before is None:
                del os.environ["PULSE_SOURCE"]
            else:
                os.environ["PULSE_SOURCE"] = before


def microphone(
    device: DeviceSpec = None,
    source: str = "mic",
    *,
    frame_ms: int = DEFAULT_FRAME_MS,
    channels: int | None = None,
    samplerate: float | None = None,
    blocksize: int | None = None,
    start_timeout: float = 10.0,
    stall_timeout: float = 5.0,
    pulse_source: str | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[AudioFrame]:
    """Frames captured live from an input device, from subscription until disposal.

    The device records at its own rate and channel count (`samplerate`/`channels`
    override them; at most two channels by default) and frames come out as 16 kHz mono
    with `seq` counting from 0. PortAudio calls back once per `blocksize` device frames:
    by default one frame's worth (fewer, larger hand-offs than PortAudio's own choice,
    which `blocksize=0` asks for). Subscribe on a running asyncio loop.

    The stream fails with `AudioDeviceError` when the device cannot be opened, when its
    first block takes longer than `start_timeout` seconds, or when it then delivers
    nothing for `stall_timeout` seconds (the sound server died or hangs). Disposal stops
    and closes it. `pulse_source` names the PulseAudio/PipeWire source this stream records
    (through the sound server's device, e.g. `@DEFAULT_MONITOR@` for the system's output).
    """
    check_source(source)
    if start_timeout <= 0 or stall_timeout <= 0:
        raise ValueError("start_timeout and stall_timeout must be positive")
    options = CaptureOptions(
        device=device,
        channels=channels,
        samplerate=samplerate,
        blocksize=blocksize,
        block_seconds=frame_samples(frame_ms) / SAMPLE_RATE,
        start_timeout=start_timeout,
        stall_timeout=stall_timeout,
        pulse_source=pulse_source,
    )
    return _device_blocks(options, scheduler).pipe(rechunk(frame_ms, source))


def _device_blocks(
    options: CaptureOptions, scheduler: abc.SchedulerBase | None
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
            capture = _Capture(observer, loop, clock, options)
        except AudioDeviceError as exc:
            observer.on_error(exc)
            return Disposable()
        return capture.disposable

    return reactivex.create(subscribe)


class _Capture:
    """One input stream and its hand-off to the loop.

    The device is looked up on the loop (PortAudio answers from its list), but opened and
    started on a thread of its own: with a sound server that hangs, opening blocks, and
    the start watchdog turns that into an error instead of a frozen loop.
    """

    def __init__(
        self,
        observer: abc.ObserverBase[AudioBlock],
        loop: asyncio.AbstractEventLoop,
        clock: abc.SchedulerBase,
        options: CaptureOptions,
    ) -> None:
        global _open_streams
        self.observer, self.loop, self.clock, self.options = observer, loop, clock, options
        self.done = self.started = False
        self.stream: Any = None
        self.overflows = 0
        self.sd = sounddevice_module()
        self.device = find_device(options.device)
        self.channels = options.channels or min(self.device.channels, 2)
        self.rate = options.samplerate or self.device.samplerate
        self.blocksize = options.blocksize
        if self.blocksize is None:
            self.blocksize = round(self.rate * options.block_seconds)
        self.converter = Converter(round(self.rate), self.channels)
        self.log = logger.bind(device=self.device.name)
        self._now = seconds_of(clock)  # read once per block: no datetime each time
        self.last_block = self._now()
        period = min(options.start_timeout, options.stall_timeout) / 4
        self.watchdog = reactivex.interval(period, clock).subscribe(self._check_stall)
        self.disposable = Disposable(self.close)
        with _closing_lock:
            _open_streams += 1  # from here until the opener's stream is closed
        threading.Thread(target=self._open, name="live-listener-open-input", daemon=True).start()

    # -- the opener's thread --------------------------------------------------------

    def _open(self) -> None:
        global _open_streams
        sd, device = self.sd, self.device
        try:
            with pulse_source_set(self.options.pulse_source):
                stream = sd.InputStream(
                    device=device.index,
                    channels=self.channels,
                    samplerate=self.rate,
                    dtype="float32",
                    blocksize=self.blocksize,
                    callback=self._callback,
                    finished_callback=self._finished,
                )
        except (sd.PortAudioError, ValueError) as exc:
            with _closing_lock:
                _open_streams -= 1
            self._to_loop(
                self._fail,
                f"cannot open input device {device.index} ({device.name}) at "
                f"{self.rate:.0f} Hz, {self.channels} ch: {exc}; {PICK_ONE}, "
                "or start the sound server",
            )
            return
        try:
            stream.start()
        except sd.PortAudioError as exc:
            _close_stream(stream)
            self._to_loop(self._fail, f"cannot start input device {device.name}: {exc}")
            return
        if not self._to_loop(self._opened, stream):
            _close_stream(stream)

    def _to_loop(self, action: Any, *args: Any) -> bool:
        try:
            self.loop.call_soon_threadsafe(action, *args)
        except RuntimeError:  # the loop is closed
            return False
        return True

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

    def _opened(self, stream: Any) -> None:
        if self.done:  # disposed (or failed) while the device was opening
            _close_in_background(stream)
            return
        self.stream = stream
        self.log.info(
            "capturing from {} ({:.0f} Hz, {} ch)", self.device.name, self.rate, self.channels
        )

    def _on_block(self, data: npt.NDArray[np.float32], overflowed: bool) -> None:
        if self.done:
            return
        now = self._now()
        self.last_block, self.started = now, True
        if overflowed:
            self.overflows += 1
            self.log.warning("input overflow: the device dropped audio ({} so far)", self.overflows)
        samples = self.converter.convert(data)
        if len(samples):
            self.observer.on_next(AudioBlock(samples, captured_at=now))

    def _on_finished(self) -> None:
        self._fail(
            "the audio stream stopped by itself: the device or sound server went away; "
            "restart it and start capturing again"
        )

    def _check_stall(self, _: int) -> None:
        quiet = self._now() - self.last_block
        if self.done:
            return
        if not self.started and quiet > self.options.start_timeout:
            self._fail(
                f"the input device delivered no audio within {self.options.start_timeout:.1f} s "
                "of starting: the sound server or device does not respond; restart it, or "
                f"{PICK_ONE}"
            )
        elif self.started and quiet > self.options.stall_timeout:
            self._fail(
                f"no audio from the input device for {self.options.stall_timeout:.1f} s: the "
                "sound server or device stopped; restart it and start capturing again"
            )

    def _fail(self, reason: str) -> None:
        if self.done:
            return
        self.close()
        self.log.warning("capture failed: {}", reason)
        self.observer.on_error(AudioDeviceError(reason))

    def close(self) -> None:
        """Stop and close the stream (idempotent); blocks still on their way are ignored.

        The stream is aborted and closed on a thread of its own, never on the loop: with a
        sound server that hangs, PortAudio's abort waits until the server answers again.
        """
        if self.done:
            return
        self.done = True
        self.watchdog.dispose()
        if self.stream is not None:  # else the opener closes what it opens
            _close_in_background(self.stream)
        self.log.info("capture stopped")


_closing_lock = threading.Lock()
_closers: set[threading.Thread] = set()
JOIN_AT_EXIT = 2.0  # seconds to let streams finish closing before PortAudio terminates


def _close_stream(stream: Any) -> None:
    """Abort (not stop: stop waits for buffers) and close; may block while a server hangs."""
    global _open_streams
    try:
        stream.abort(ignore_errors=True)
    finally:
        stream.close(ignore_errors=True)
        with _closing_lock:
            _open_streams -= 1


def _close_in_background(stream: Any) -> None:
    def close() -> None:
        try:
            _close_stream(stream)
        finally:
            with _closing_lock:
                _closers.discard(thread)

    thread = threading.Thread(target=close, name="live-listener-close-input", daemon=True)
    with _closing_lock:
        _closers.add(thread)
    thread.start()


def _join_closers() -> None:
    """At exit, before sounddevice terminates PortAudio: let closing streams finish."""
    with _closing_lock:
        pending = list(_closers)
    for thread in pending:
        thread.join(JOIN_AT_EXIT)
