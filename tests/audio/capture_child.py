"""microphone() in a process of its own, for the tests whose sound server is missing,
broken or killed: PortAudio reads its environment once, so such a test cannot share the
test process's PortAudio. Reports JSON lines on stdout:

    {"event": "devices", "count": N}      what list_devices() saw
    {"event": "capturing"}                the first frames arrived
    {"event": "error", "type": ..., "message": ..., "frames": N}
    {"event": "done", "frames": N}        no error within --seconds
    {"event": "report", ...}              with --session: how the Session ended, and
                                          how many frames the backend recorded
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from backend.config import BackendConfig
from backend.recording import recorded_pcm
from backend.server import running_backend
from pipeline.audio import AudioFrame
from pipeline.capture import list_devices, microphone
from pipeline.config import SessionConfig
from pipeline.errors import AudioDeviceError
from pipeline.session import Session


def report(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def capture(stall: float, seconds: float, start: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    frames: list[AudioFrame] = []
    errors: list[Exception] = []
    mic = microphone(start_timeout=start, stall_timeout=stall)
    subscription = mic.subscribe(frames.append, errors.append)
    announced = False
    deadline = loop.time() + seconds
    while not errors and loop.time() < deadline:
        if frames and not announced:
            report(event="capturing")
            announced = True
        await asyncio.sleep(0.02)
    subscription.dispose()
    if errors:
        error = errors[0]
        report(event="error", type=type(error).__name__, message=str(error), frames=len(frames))
    else:
        report(event="done", frames=len(frames))


async def capture_in_session(stall: float, seconds: float) -> None:
    """microphone() -> Session -> an embedded backend recording what it receives."""
    with tempfile.TemporaryDirectory() as record_dir:
        async with running_backend(BackendConfig(record_dir=Path(record_dir))) as backend:
            session = Session(SessionConfig(url=backend.url), microphone(stall_timeout=stall))
            announced = asyncio.Event()

            def on_change() -> None:
                counts = session.outbox.counts().get("mic")
                if counts is not None and counts.captured and not announced.is_set():
                    announced.set()
                    report(event="capturing")

            session.outbox.listen(on_change)
            result = await asyncio.wait_for(session.run(), seconds)
        recorded = recorded_pcm(Path(record_dir), session.ids.session_id, "mic")
    counts = result.audio.get("mic")
    report(
        event="report",
        outcome=result.outcome,
        failure_kind=result.failure_kind,
        reason=result.reason,
        captured=0 if counts is None else counts.captured,
        recorded_frames=len(recorded) // 640,
    )


def hide_portaudio() -> None:
    """PortAudio is installed on this machine and a test cannot uninstall it, so this
    stands in for its absence: the library lookup sounddevice makes finds nothing."""
    import ctypes.util

    real = ctypes.util.find_library

    def find_library(name: str) -> str | None:
        return None if "portaudio" in name else real(name)

    ctypes.util.find_library = find_library


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stall", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--without-portaudio", action="store_true")
    parser.add_argument("--session", action="store_true", help="capture into a Session")
    parser.add_argument("--start", type=float, default=10.0, help="start_timeout")
    parser.add_argument(
        "--wait", action="store_true", help="after listing devices, wait for a line on stdin"
    )
    args = parser.parse_args()
    if args.without_portaudio:
        hide_portaudio()
    try:
        report(event="devices", count=len(list_devices()))
    except AudioDeviceError as error:
        report(event="error", type=type(error).__name__, message=str(error), frames=0)
        return
    if args.wait:
        sys.stdin.readline()
    if args.session:
        asyncio.run(capture_in_session(args.stall, args.seconds))
    else:
        asyncio.run(capture(args.stall, args.seconds, args.start))


if __name__ == "__main__":
    main()
