"""`live-listener listen`: one source, any backend, the live view and the transcript files.

Everything that can be checked before audio flows is checked first — the source (a
device that exists, a file that is a WAV), the URL, the token, the transcript path — so
a mistake ends the command at once with exit code 4 and a line that names the fix,
instead of a session that fails later.
"""

from __future__ import annotations

import os
import wave
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Literal

import reactivex
from reactivex import Observable
from reactivex import operators as ops

from operators.backoff import BackoffPolicy
from pipeline.audio import AudioFrame
from pipeline.capture import DeviceSpec, find_device, list_devices, microphone
from pipeline.config import ProtocolLevel, SessionConfig
from pipeline.errors import AudioDeviceError
from pipeline.exit_codes import ExitCode, ExitError
from pipeline.foreground import Outcome, run_in_foreground
from pipeline.redaction import Secret
from pipeline.session import Session
from pipeline.sources import tone, wav_file
from sinks.console import ConsoleSink
from sinks.transcript import TranscriptSink, default_transcript_path

SourceKind = Literal["mic", "system", "file", "tone"]
SOURCE_HELP = "mic, system, file:PATH or tone"
TONE_SECONDS = 10.0  # a tone without --duration plays this long
_DEVICE_KINDS: dict[str, SourceKind] = {"mic": "mic", "system": "system", "tone": "tone"}
DEFAULT_MONITOR = "@DEFAULT_MONITOR@"  # PulseAudio/PipeWire: the monitor of the default output


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """Where the audio comes from: a capture device (`mic`, `system`), a WAV file played
    at its own pace, or a test tone."""

    kind: SourceKind
    path: Path | None = None

    @property
    def label(self) -> str:
        """The source name on the wire: `mic` for the microphone, `system` otherwise."""
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
    """`mic`, `system`, `tone` or `file:PATH` (a usage error otherwise)."""
    if text in _DEVICE_KINDS:
        return SourceSpec(_DEVICE_KINDS[text])
    if text.startswith("file:") and len(text) > len("file:"):
        return SourceSpec("file", Path(text[len("file:") :]).expanduser())
    raise ValueError(f"unknown source {text!r}: use {SOURCE_HELP}")


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


def capture_device(spec: SourceSpec, device: str | None) -> DeviceSpec:
    """The device to open for `mic`/`system`, checked now (raises `ExitError`).

    `system` without `--device` records the monitor of the default output through the
    sound server's default input (PulseAudio and PipeWire honour `PULSE_SOURCE`).
    """
    wanted = parse_device(device)
    try:
        if spec.kind == "system" and wanted is None:
            names = [d.name for d in list_devices()]
            if names and "pulse" not in names:
                raise AudioDeviceError(
                    "no sound server device to record the system's output from; pass the "
                    "loopback or monitor input with --device (see `live-listener devices`)"
                )
            if names:
                os.environ["PULSE_SOURCE"] = DEFAULT_MONITOR
                wanted = "pulse"
        find_device(wanted)  # no devices at all: the error says how to get some
    except AudioDeviceError as exc:
        raise ExitError(ExitCode.BAD_CONFIG, str(exc)) from exc
    return wanted


def open_audio(
    spec: SourceSpec, *, device: str | None = None, duration: float | None = None
) -> Observable[AudioFrame]:
    """The frames of `spec`, ending after `duration` seconds when given."""
    audio: Observable[AudioFrame]
    if spec.kind == "file":
        assert spec.path is not None
        wav_seconds(spec.path)
        audio = wav_file(spec.path, source=spec.label)
    elif spec.kind == "tone":
        audio = tone(440.0, duration or TONE_SECONDS, source=spec.label)
    else:
        audio = microphone(capture_device(spec, device), source=spec.label)
    if duration is not None:
        audio = audio.pipe(ops.take_until(reactivex.timer(duration)))
    return audio


@dataclass(frozen=True)
class ListenOptions:
    url: str
    token: Secret | None = None
    source: SourceSpec = field(default_factory=lambda: SourceSpec("mic"))
    device: str | None = None
    protocol: ProtocolLevel = "auto"
    transcript: Path | None = None
    duration: float | None = None
    heartbeat: float = 5.0
    max_attempts: int | None = None
    give_up_after: float | None = None
    stop_timeout: float = 10.0
    buffer_seconds: float = 120.0
    verify_tls: bool = True
    live: bool | None = None  # None: the live view on a terminal, plain lines elsewhere


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
            verify_tls=options.verify_tls,
            backoff=BackoffPolicy(
                max_attempts=options.max_attempts, max_elapsed=options.give_up_after
            ),
        )
    except ValueError as exc:
        raise ExitError(ExitCode.BAD_CONFIG, str(exc)) from exc


async def listen(options: ListenOptions, out: IO[str] | None = None) -> Outcome:
    """Stream `options.source` to the backend until it ends, fails or is interrupted."""
    config = session_config(options)
    audio = open_audio(options.source, device=options.device, duration=options.duration)
    session = Session(config, audio)
    started = datetime.now().astimezone()
    path = options.transcript or default_transcript_path(session.ids.session_id, started)
    transcript = TranscriptSink(
        path,
        session_id=session.ids.session_id,
        events=session.events,
        backend=config.url,
        audio=options.source.describe(options.device),
        started=started,
    )
    console = ConsoleSink(session, out, title=f"live-listener → {config.url}", live=options.live)
    header = [
        f"backend      {config.url}",
        f"audio        {options.source.describe(options.device)}",
    ]
    if not options.verify_tls and config.url.startswith("wss:"):
        header.append("TLS          certificate NOT verified (--insecure)")
    console.print_lines(header)
    return await run_in_foreground(session, console, transcript)
