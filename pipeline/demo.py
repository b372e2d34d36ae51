"""The demo: the embedded backend, a recording, an outage mid-way, and the live state.

Nothing outside this process is needed: the backend runs on a free loopback port, and the
outage is real — the backend goes away and comes back — not a code path in the client.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO

from reactivex import Observable

from backend.asr import recognizer_factory
from backend.config import BackendConfig
from backend.server import RunningBackend, free_port, start_backend
from backend.store import SessionStore
from operators.backoff import BackoffPolicy
from pipeline.audio import AudioFrame
from pipeline.config import SessionConfig
from pipeline.report import SessionReport
from pipeline.session import Session
from pipeline.sources import tone, wav_file
from sinks.console import print_status


def bundled_recording() -> Path | None:
    """The speech recording shipped with the package, if present."""
    candidate = resources.files("backend") / "samples" / "speech.wav"
    path = Path(str(candidate))
    return path if path.exists() else None


@dataclass(frozen=True)
class DemoOptions:
    file: Path | None = None
    outage: float = 3.0  # seconds without a backend; 0 for none
    outage_at: float = 0.4  # fraction of the recording after which the outage begins
    asr: str = "pocketsphinx"
    seconds: float = 8.0  # length of the fallback tone when no recording is available


async def run_demo(options: DemoOptions, out: IO[str] = sys.stdout) -> SessionReport:
    path = options.file or bundled_recording()
    audio: Observable[AudioFrame] = (
        wav_file(path) if path is not None else tone(440.0, options.seconds)
    )
    length = _length(path) if path is not None else options.seconds
    backend_config = BackendConfig(asr=options.asr)
    store = SessionStore(backend_config, recognizer_factory(options.asr))
    port = free_port()
    live = [await start_backend(backend_config, port=port, store=store)]
    print(f"backend  {live[0].url}", file=out)
    print(f"audio    {path or f'{options.seconds:.0f} s test tone'} ({length:.1f} s)", file=out)
    config = SessionConfig(
        url=live[0].url,
        heartbeat=2.0,
        backoff=BackoffPolicy(initial=0.5, max_delay=2.0, reset_after=2.0),
    )
    session = Session(config, audio)
    printing = print_status(session, out)
    outage = None
    if options.outage > 0:
        outage = asyncio.get_running_loop().create_task(
            _outage(live, port, length * options.outage_at, options.outage, out)
        )
    try:
        report = await session.run()
    finally:
        printing.dispose()
        if outage is not None:
            outage.cancel()
            await asyncio.gather(outage, return_exceptions=True)
        await live[0].runner.cleanup()
        await store.close()
    print("", file=out)
    for line in report.lines():
        print(line, file=out)
    if report.text:
        print(f"\ntranscript: {report.text}", file=out)
    return report


async def _outage(
    live: list[RunningBackend], port: int, after: float, duration: float, out: IO[str]
) -> None:
    """Take the backend away and bring it back on the same port, sessions kept."""
    await asyncio.sleep(after)
    print(f"-- outage: the backend goes away for {duration:.1f} s --", file=out, flush=True)
    backend, store = live[0], live[0].store
    await backend.runner.cleanup()
    await asyncio.sleep(duration)
    live[0] = await start_backend(store.config, port=port, store=store)
    print("-- the backend is back --", file=out, flush=True)


def _length(path: Path) -> float:
    import wave

    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()
