"""Ctrl-C for a script run as a child: start it, wait until it says its session has
frames acknowledged, send SIGINT, and collect what it printed."""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import dataclass

# Prepended to every script: Ctrl-C as in a terminal. A shell that started this run in the
# background left SIGINT ignored, and Python then installs no KeyboardInterrupt handler.
TERMINAL_SIGINT = """import signal
signal.signal(signal.SIGINT, signal.default_int_handler)
"""


@dataclass(frozen=True)
class Interrupted:
    out: str
    err: str
    returncode: int | None


async def interrupt_when_acked(script: str, url: str) -> Interrupted:
    """Run `script` (which prints "acked" once ten frames are confirmed) against `url`,
    interrupt it then, and wait for it to end."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-c", TERMINAL_SIGINT + script, url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 20)
    assert line == b"acked\n"  # ten frames confirmed: the session is streaming
    process.send_signal(signal.SIGINT)
    # the stop waits up to stop_timeout (10 s) for the summary, the close up to aiohttp's
    # 10 s: only a hang outlasts a minute, however busy the machine
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return Interrupted(out.decode(), err.decode(), process.returncode)
