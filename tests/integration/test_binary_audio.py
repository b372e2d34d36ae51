"""Binary audio with seq against the embedded backend: acked and resumed by seq exactly as
JSON audio is; a v0.2 backend never sees it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from loguru import logger
from reactivex import operators as ops

from backend.chaos import ChaosProxy, Fault
from operators.backoff import BackoffPolicy
from pipeline.audio import AudioFrame
from pipeline.config import SessionConfig
from pipeline.report import SessionReport
from pipeline.session import Session
from pipeline.sources import tone
from tests.conftest import BackendFactory

SECONDS = 3.0
GATED = range(40, 50)  # frames a gate drops before the outbox: a gap only seq can tell
FRAMES = round(SECONDS / 0.02) - len(GATED)


@contextmanager
def streaming_lines() -> Iterator[list[str]]:
    """The client's `streaming (...)` log lines: they name the audio framing in use."""
    lines: list[str] = []
    sink = logger.add(
        lambda message: lines.append(message.record["message"]),
        level="INFO",
        filter=lambda record: record["message"].startswith("streaming ("),
    )
    try:
        yield lines
    finally:
        logger.remove(sink)


async def stream(url: str) -> SessionReport:
    config = SessionConfig(
        url=url, heartbeat=0.3, backoff=BackoffPolicy(initial=0.05, max_delay=0.2)
    )

    def kept(frame: AudioFrame) -> bool:
        return frame.seq not in GATED

    audio = tone(440.0, SECONDS, realtime=4.0).pipe(ops.filter(kept))  # a frame every 5 ms
    return await asyncio.wait_for(Session(config, audio).run(), 60)


def source_summary(report: SessionReport) -> dict[str, object]:
    assert report.summary is not None
    return dict(report.summary.json["sources"]["system"])


async def test_binary_audio_is_acked_and_resumed_by_its_seq(make_backend: BackendFactory) -> None:
    reset = Fault(at=FRAMES // 3, kind="reset", duration=0.2)
    with streaming_lines() as lines:
        async with (
            make_backend() as backend,
            ChaosProxy(backend.port, [reset], clock="frames") as proxy,
        ):
            report = await stream(proxy.url)

    assert lines[0] == "streaming (protocol 0.3, binary audio, first connection)"
    assert lines[1:] == ["streaming (protocol 0.3, binary audio, resumed)"]
    assert (report.outcome, report.resumes, report.resets) == ("completed", 1, 0)
    counts = report.audio["system"]
    assert counts.captured == counts.acked == FRAMES and counts.lost == 0
    assert counts.resent > 0  # the reset cut frames in flight: written again after resuming
    backend_side = source_summary(report)
    # every frame once, and the gate's gap seen where it is: the backend read each seq
    assert backend_side["received_s"] == round(FRAMES * 0.02, 3)
    assert (backend_side["gaps"], backend_side["duplicates"]) == (1, 0)


async def test_a_v02_backend_gets_json_audio(make_backend: BackendFactory) -> None:
    with streaming_lines() as lines:
        async with make_backend(protocol="0.2") as backend:
            report = await stream(backend.url)

    assert lines == ["streaming (protocol 0.2, JSON audio, first connection)"]
    assert report.outcome == "completed" and report.protocol == "0.2"
    counts = report.audio["system"]
    assert counts.captured == counts.acked == FRAMES and counts.lost == 0
    backend_side = source_summary(report)
    assert (
        backend_side["received_s"] == round(FRAMES * 0.02, 3) and backend_side["gaps"] == 0
    )  # no seq
