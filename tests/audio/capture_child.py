"""microphone() in a process of its own, for the tests whose sound server is missing,
broken or killed: PortAudio reads its environment once, so such a test cannot share the
test process's PortAudio. Reports JSON lines on stdout:

    {"event": "devices", "count": N}      what list_devices() saw
    {"event": "capturing"}                the first frames arrived
    {"event": "error", "type": ..., "message": ..., "frames": N}
    {"event": "done", "frames": N}        no error within --seconds
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from pipeline.audio import AudioFrame
from pipeline.capture import list_devices, microphone
from pipeline.errors import AudioDeviceError


def report(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def capture(stall: float, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    frames: list[AudioFrame] = []
    errors: list[Exception] = []
    subscription = microphone(stall_timeout=stall).subscribe(frames.append, errors.append)
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
    args = parser.parse_args()
    if args.without_portaudio:
        hide_portaudio()
    try:
        report(event="devices", count=len(list_devices()))
    except AudioDeviceError as error:
        report(event="error", type=type(error).__name__, message=str(error), frames=0)
        return
    asyncio.run(capture(args.stall, args.seconds))


if __name__ == "__main__":
    main()
