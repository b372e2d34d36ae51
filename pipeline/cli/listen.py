"""`live-listener listen`: one or more sources, any backend, the live view and the transcript.

Everything that can be checked before audio flows is checked first — the source (a
device that exists, a file that is a WAV), the URL, the token, the transcript path — so
a mistake ends the command at once with exit code 4 and a line that names the fix,
instead of a session that fails later.
"""

from __future__ import annotations

import wave
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Literal

import reactivex
from reactivex import Observable
from reactivex import operators as ops

from operators.backoff import BackoffPolicy
from pipeline.audio import AudioFrame
from pipeline.capture import DeviceSpec, find_device, list_devices, microphone
from pipeline.cli.exit_codes import ExitCode, ExitError
from pipeline.cli.foreground import Outcome, run_in_foreground
from pipeline.config import ProtocolLevel, SessionConfig
from pipeline.errors import AudioDeviceError
from pipeline.redaction import Secret
from pipeline.session import Session
from pipeline.sources import tone, wav_file
from sinks.console import ConsoleSink
from sinks.events import EventLines
from sinks.transcript import TranscriptSink, default_transcript_path

SourceKind = Literal["mic", "system", "file", "tone"]
SOURCE_HELP = "mic, system, file:PATH or tone"
TONE_SECONDS = 10.0  # a tone without --duration plays this long
_DEVICE_KINDS: dict[str, SourceKind] = {"mic": "mic", "system": "system", "tone": "tone"}
DEFAULT_MONITOR = "@DEFAULT_MONITOR@"  # PulseAudio/PipeWire: the monitor of the default output


Label = Literal["mic", "system"]
Speed = float | Literal["max"]


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """Where the audio comes from: a capture device (`mic`, `system`), a WAV file played
    at its own pace, or a test tone; `name` overrides the label (`mic=file:talk.wav`)."""

    kind: SourceKind
    path: Path | None = None
    name: Label | None = None

    @property
    def label(self) -> str:
        """The source name on the wire and in the transcript: `mic` for the microphone,
        `system` otherwise, unless named."""
        if self.name is not None:
            return self.name
        return "mic" if self.kind == "mic" else "system"

    def describe(self, device: str | None = None) -> str:
        if self.kind == "file":
            return f"file {self.path}"
        if self.kind == "tone":
            return "a 440 Hz test tone"
        if self.kind == "mic":
            return f"microphone ({device or 'default input'})"
        return f"system audio ({device or 'monitor of the default output'})"


def parse_source(text: str) -> SourceSpec:
    """`mic`, `system`, `tone` or `file:PATH`, optionally named `mic=...`/`system=...`."""
    name: Label | None = None
    for label in ("mic", "system"):
        if text.startswith(f"{label}="):
            name, text = label, text[len(label) + 1 :]
    if text in _DEVICE_KINDS:
        return SourceSpec(_DEVICE_KINDS[text], name=name)
    if text.startswith("file:") and len(text) > len("file:"):
        return SourceSpec("file", Path(text[len("file:") :]).expanduser(), name=name)
    raise ValueError(f"unknown source {text!r}: use {SOURCE_HELP}")


def check_sources(specs: Sequence[SourceSpec]) -> tuple[SourceSpec, ...]:
    """At most one source per label: each is its own stream on the wire."""
    labels = [spec.label for spec in specs]
    for label in set(labels):
        if labels.count(label) > 1:
            raise ExitError(
                ExitCode.USAGE,
                f"two sources would both stream as {label!r}: name one, e.g. "
                "--source mic=file:talk.wav (the labels are mic and system)",
            )
    return tuple(specs)


def parse_device(text: str | None) -> DeviceSpec:
    """A device index (digits) or any unique part of a device's name."""
    if text is None:
        return None
    return int(text) if text.isdigit() else text


def wav_seconds(path: Path) -> float:
    """The length of a WAV file; `ExitError(BAD_CONFIG)` when it is missing or not a WAV."""
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes() / wav.getframerate()
    except FileNotFoundError as exc:
        raise ExitError(ExitCode.BAD_CONFIG, f"no such audio file: {path}") from exc
    except (OSError, wave.Error, EOFError) as exc:
        raise ExitError(
            ExitCode.BAD_CONFIG,
            f"{path} is not a PCM WAV file ({exc}); convert it, e.g. "
            f"`sox {path.name} -r 16000 -c 1 -b 16 out.wav`",
        ) from exc


def capture_device(spec: SourceSpec, device: str | None) -> tuple[DeviceSpec, str | None]:
    """The device to open for `mic`/`system` and the sound server source to record
    through it, checked now (raises `ExitError`).

    `system` without `--device` records the monitor of the default output through the
    sound server's device (PulseAudio and PipeWire honour `PULSE_SOURCE`).
    """
    wanted = parse_device(device)
    pulse_source = None
    try:
        if spec.kind == "system" and wanted is None:
            names = [d.name for d in list_devices()]
            if names and "pulse" not in names:
                raise AudioDeviceError(
                    "no sound server device to record the system's output from; pass the "
                    "loopback or monitor input with --device (see `live-listener devices`)"
                )
            if names:
                pulse_source, wanted = DEFAULT_MONITOR, "pulse"
        find_device(wanted)  # no devices at all: the error says how to get some
    except AudioDeviceError as exc:
        raise ExitError(ExitCode.BAD_CONFIG, str(exc)) from exc
    return wanted, pulse_source


def open_audio(
    spec: SourceSpec,
    *,
    device: str | None = None,
    duration: float | None = None,
    speed: Speed = 1.0,
) -> Observable[AudioFrame]:
    """The frames of `spec`, ending after `duration` seconds when given. A file plays at
    `speed` times real time, or with `max` as fast as the backend confirms it."""
    audio: Observable[AudioFrame]
    if spec.kind == "file":
        assert spec.path is not None
        wav_seconds(spec.path)
        realtime = False if speed == "max" else speed
        audio = wav_file(spec.path, source=spec.label, realtime=realtime)
    elif spec.kind == "tone":
        audio = tone(440.0, duration or TONE_SECONDS, source=spec.label)
    else:
        wanted, pulse_source = capture_device(spec, device)
        audio = microphone(wanted, source=spec.label, pulse_source=pulse_source)
    if duration is not None:
        audio = audio.pipe(ops.take_until(reactivex.timer(duration)))
    return audio


def open_sources(options: ListenOptions) -> Observable[AudioFrame]:
    """Every source of `options`, merged: each keeps its own label and its own seq."""
    streams = [
        open_audio(spec, device=options.device, duration=options.duration, speed=options.speed)
        for spec in check_sources(options.sources)
    ]
    return streams[0] if len(streams) == 1 else reactivex.merge(*streams)


def describe_sources(options: ListenOptions) -> str:
    return "; ".join(spec.describe(options.device) for spec in options.sources)


@dataclass(frozen=True)
class ListenOptions:
    url: str
    token: Secret | None = None
    sources: tuple[SourceSpec, ...] = (SourceSpec("mic"),)
    device: str | None = None
    protocol: ProtocolLevel = "auto"
    transcript: Path | None = None
    duration: float | None = None
    heartbeat: float = 5.0
    max_attempts: int | None = None
    give_up_after: float | None = None
    stop_timeout: float = 10.0
    buffer_seconds: float = 120.0
    flow_window: float = SessionConfig.flow_window  # seconds in flight per source
    verify_tls: bool = True
    live: bool | None = None  # None: the live view on a terminal, plain lines elsewhere
    speed: Speed = 1.0  # file sources: times real time, or "max" (paced by the acks)
    events: IO[str] | None = None  # a JSON object per event here (then the view goes to `out`)


def session_config(options: ListenOptions) -> SessionConfig:
    """The session's settings; `ExitError(BAD_CONFIG)` names what is wrong with them."""
    try:
        return SessionConfig(
            url=options.url,
            token=options.token,
            protocol=options.protocol,
            heartbeat=options.heartbeat,
            stop_timeout=options.stop_timeout,
            buffer_seconds=options.buffer_seconds,
            flow_window=options.flow_window,
            verify_tls=options.verify_tls,
            backoff=BackoffPolicy(
                max_attempts=options.max_attempts, max_elapsed=options.give_up_after
            ),
        )
    except ValueError as exc:
        raise ExitError(ExitCode.BAD_CONFIG, str(exc)) from exc


async def listen(options: ListenOptions, out: IO[str] | None = None) -> Outcome:
    """Stream `options.sources` to the backend until they end, fail or are interrupted."""
    config = session_config(options)
    audio = open_sources(options)
    session = Session(config, audio)
    started = datetime.now().astimezone()
    path = options.transcript or default_transcript_path(session.ids.session_id, started)
    transcript = TranscriptSink(
        path,
        session_id=session.ids.session_id,
        events=session.events,
        backend=config.url,
        audio=describe_sources(options),
        started=started,
    )
    console = ConsoleSink(session, out, title=f"live-listener → {config.url}", live=options.live)
    header = [f"backend      {config.url}"]
    header += [f"audio        {spec.describe(options.device)}" for spec in options.sources]
    if not options.verify_tls and config.url.startswith("wss:"):
        header.append("TLS          certificate NOT verified (--insecure)")
    console.print_lines(header)
    if options.events is None:
        return await run_in_foreground(session, console, transcript)
    lines = EventLines(session, options.events, [spec.label for spec in options.sources])
    outcome: Outcome | None = None
    try:
        outcome = await run_in_foreground(session, console, transcript)
    finally:
        unwritten = lines.close(outcome.report if outcome is not None else None)
        if unwritten is not None:
            console.print_lines([unwritten])
    return outcome
