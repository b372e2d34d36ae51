"""The backend's recording fails (a full disk, a broken file): the session goes on
transcribing, the client is told once why, acks never run ahead of what was handled,
and nothing loops."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.recording import recorded_pcm
from pipeline.protocol import Ack, ServerEvent, Status
from pipeline.report import SessionReport
from pipeline.session import Session
from pipeline.sources import from_samples
from tests.conftest import BackendFactory
from tests.integration.test_session import chirp, fast

SECONDS = 4.0
FRAMES = round(SECONDS * 50)
TMPFS_BYTES = 64 * 1024  # 2 s of audio: the disk fills half-way through


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def warnings_about_recording(events: list[ServerEvent]) -> list[Status]:
    return [
        e
        for e in events
        if isinstance(e, Status) and e.state == "warning" and "recording stopped" in e.message
    ]


def transcribed_everything(report: SessionReport) -> None:
    counts = report.audio["system"]
    assert report.outcome == "completed", report.reason
    assert report.reconnects == 0  # no resume loop
    assert counts.captured == counts.acked == FRAMES and report.frames_lost == 0
    assert report.summary is not None
    source = report.summary.json["sources"]["system"]
    assert source["received_s"] == SECONDS and source["recognized_s"] == SECONDS
    assert source["duplicates"] == source["gaps"] == 0


def summary_recording(report: SessionReport) -> tuple[bool, str | None]:
    """What `final_summary` says of the recording of the one source."""
    assert report.summary is not None
    source = report.summary.json["sources"]["system"]
    return source["recorded"], source["recording_error"]


async def test_a_full_disk_stops_the_recording_not_the_session(
    make_backend: BackendFactory, full_disk: Path
) -> None:
    samples = chirp(SECONDS)
    async with make_backend(record_dir=full_disk) as backend:
        session = Session(fast(backend.url), from_samples(samples, realtime=False))
        events: list[ServerEvent] = []
        session.events.subscribe(events.append)
        report = await asyncio.wait_for(session.run(), 30)

    transcribed_everything(report)
    [warning] = warnings_about_recording(events)
    assert "No space left on device" in warning.message
    on_disk, error = summary_recording(report)  # the summary says so too
    assert on_disk is False and error is not None and "No space left on device" in error
    assert "still transcribed" in warning.message
    # what reached the disk is a whole-frame prefix of the audio, within the tmpfs
    recorded = recorded_pcm(full_disk, session.ids.session_id)
    assert 0 < len(recorded) <= TMPFS_BYTES and len(recorded) % 640 == 0
    assert recorded == samples.tobytes()[: len(recorded)]


async def test_an_injected_write_error_is_reported_once_and_the_session_completes(
    make_backend: BackendFactory, record_dir: Path
) -> None:
    """The recording's file descriptor is closed under the backend (EBADF on the next write)."""
    samples = chirp(SECONDS)
    async with make_backend() as backend:
        session = Session(fast(backend.url), from_samples(samples, realtime=True))
        events: list[ServerEvent] = []
        acked = asyncio.Event()  # the first ack: the recording file is open by then
        session.events.subscribe(events.append)
        session.events.subscribe(lambda e: acked.set() if isinstance(e, Ack) else None)
        running = asyncio.ensure_future(session.run())
        await acked.wait()
        [backend_session] = backend.store.sessions.values()
        assert backend_session.recording is not None
        handle = backend_session.recording._files["system"]
        before = recorded_pcm(record_dir, session.ids.session_id)
        os.close(handle.fileno())  # the injected fault
        report = await asyncio.wait_for(running, 30)

    transcribed_everything(report)
    [warning] = warnings_about_recording(events)
    assert "Bad file descriptor" in warning.message
    on_disk, error = summary_recording(report)
    assert on_disk is False and error is not None and "Bad file descriptor" in error
    recorded = recorded_pcm(record_dir, session.ids.session_id)
    assert len(before) <= len(recorded) < len(samples.tobytes())
    assert recorded == samples.tobytes()[: len(recorded)]


@pytest.mark.parametrize("recording", [True, False])
async def test_the_summary_says_whether_the_audio_was_recorded(
    make_backend: BackendFactory, record_dir: Path, recording: bool
) -> None:
    overrides = {} if recording else {"record_dir": None}
    async with make_backend(**overrides) as backend:
        session = Session(fast(backend.url), from_samples(chirp(SECONDS), realtime=False))
        report = await asyncio.wait_for(session.run(), 30)

    transcribed_everything(report)
    assert summary_recording(report) == (recording, None)
    assert len(recorded_pcm(record_dir, session.ids.session_id)) == (
        FRAMES * 640 if recording else 0
    )
