"""Ctrl-C in a script that iterates a `BlockingSession`: leaving the block by the
KeyboardInterrupt stops the session cleanly — stop sent, summary awaited, every captured
frame acknowledged and recorded by the backend — and then the interrupt goes on."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from backend.recording import recorded_pcm
from tests.integration.interrupt import interrupt_when_acked

SCRIPT = """
import sys, threading
from pipeline import BlockingSession, SessionConfig, tone

def announce_when_acked(session) -> None:
    while (counts := session.current.audio.get("system")) is None or counts.acked < 10:
        threading.Event().wait(0.02)
    print("acked", flush=True)

session = BlockingSession(SessionConfig(url=sys.argv[1]), tone(440.0, 60.0))
try:
    with session:
        threading.Thread(target=announce_when_acked, args=(session,), daemon=True).start()
        for _ in session:  # blocked here, in the main thread, when SIGINT comes
            pass
finally:
    report = session.report
    counts = report.audio["system"]
    print("report", report.session_id, report.outcome, report.summary is not None, counts.captured,
          counts.sent, counts.acked, report.frames_lost, flush=True)
"""


async def test_ctrl_c_while_iterating_a_blocking_session_stops_cleanly(
    backend: Any, record_dir: Path
) -> None:
    ran = await interrupt_when_acked(SCRIPT, backend.url)

    fields = ran.out.split()
    session_id = fields[1]
    assert fields[:1] + fields[2:4] == ["report", "stopped", "True"], ran.err
    captured, sent, acked, lost = map(int, fields[4:])  # and the summary came, above
    assert captured >= 10 and captured == sent == acked and lost == 0
    # the backend holds exactly what was captured: nothing lost, nothing twice
    assert len(recorded_pcm(record_dir, session_id)) == captured * 640
    # the interrupt is not swallowed: the script ends by it, after the clean stop
    assert ran.returncode == -signal.SIGINT
    assert "KeyboardInterrupt" in ran.err
