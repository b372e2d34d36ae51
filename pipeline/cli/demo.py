"""The demo: the embedded backend, a recording in real time, a network outage mid-way.

Nothing outside this process is needed. The backend runs on a free loopback port and the
client reaches it through the chaos proxy (`backend.chaos`), which cuts the connection
mid-way and refuses new ones for `outage` seconds — a real outage between client and
backend, handled by the same code as any other: the live view shows the retries and
their countdown, the buffered frames piling up, and the resume that delivers them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import IO

from reactivex import Observable

from backend.chaos import ChaosProxy, Fault
from backend.config import BackendConfig
from backend.server import running_backend
from operators.backoff import BackoffPolicy
from pipeline.audio import AudioFrame
from pipeline.cli.foreground import Outcome, run_in_foreground
from pipeline.cli.listen import wav_seconds
from pipeline.config import SessionConfig
from pipeline.session import Session
from pipeline.sources import tone, wav_file
from sinks.console import ConsoleSink
from sinks.transcript import TranscriptSink, default_transcript_path


def bundled_recording() -> Path | None:
    """The speech recording shipped with the package, if present."""
    candidate = resources.files("backend") / "samples" / "speech.wav"
    path = Path(str(candidate))
    return path if path.exists() else None


@dataclass(frozen=True)
class DemoOptions:
    file: Path | None = None
    outage: float = 4.0  # seconds the network is down (connections cut, then refused); 0: none
    outage_at: float = 0.4  # fraction of the recording after which the outage begins
    asr: str = "pocketsphinx"
    seconds: float = 8.0  # length of the fallback tone when no recording is available
    transcript: Path | None = None
    live: bool | None = None  # None: the live view on a terminal, plain lines elsewhere


def demo_config(url: str) -> SessionConfig:
    """Short heartbeat and backoff, so an outage of a few seconds shows a few retries."""
    return SessionConfig(
        url=url, heartbeat=2.0, backoff=BackoffPolicy(initial=0.5, max_delay=2.0, reset_after=2.0)
    )


async def run_demo(options: DemoOptions, out: IO[str] | None = None) -> Outcome:
    path = options.file or bundled_recording()
    length = wav_seconds(path) if path is not None else options.seconds
    audio: Observable[AudioFrame] = (
        wav_file(path) if path is not None else tone(440.0, options.seconds)
    )
    described = f"{path} ({length:.1f} s)" if path else f"a {length:.0f} s test tone"
    async with (
        running_backend(BackendConfig(asr=options.asr)) as backend,
        ChaosProxy(backend.port) as proxy,
    ):
        session = Session(demo_config(proxy.url), audio)
        console = ConsoleSink(session, out, title="live-listener demo", live=options.live)
        started = datetime.now().astimezone()
        transcript = TranscriptSink(
            options.transcript or default_transcript_path(session.ids.session_id, started),
            session_id=session.ids.session_id,
            events=session.events,
            backend=f"{backend.url} (embedded, {options.asr}) through a chaos proxy",
            audio=described,
            started=started,
        )
        at = length * options.outage_at
        console.print_lines(
            [
                f"backend      {backend.url} (embedded, recogniser: {options.asr})",
                f"network      chaos proxy {proxy.url}",
                f"audio        {described}, in real time",
                f"outage       at {at:.1f} s for {options.outage:.1f} s"
                if options.outage > 0
                else "outage       none",
            ]
        )
        outage = None
        if options.outage > 0:
            outage = asyncio.get_running_loop().create_task(
                _outage(proxy, console, at, options.outage)
            )
        try:
            return await run_in_foreground(session, console, transcript)
        finally:
            if outage is not None:
                outage.cancel()
                await asyncio.gather(outage, return_exceptions=True)


async def _outage(proxy: ChaosProxy, console: ConsoleSink, after: float, duration: float) -> None:
    """Cut every connection and refuse new ones for `duration` seconds."""
    await asyncio.sleep(after)
    console.note(f"-- outage: the network drops every connection for {duration:.1f} s --")
    await proxy.inject(Fault(at=after, kind="reset", duration=duration))
    await asyncio.sleep(duration)
    console.note("-- the network is back --")
