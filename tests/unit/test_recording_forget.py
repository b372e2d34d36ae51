"""A recording forgets the frames its process read but never acknowledged (they are sent
again), so that after a graceful restart the file holds each frame once."""

from __future__ import annotations

from pathlib import Path

from backend.recording import Recording, recorded_pcm
from pipeline.audio import FRAME_BYTES

FRAME = FRAME_BYTES


def frame(number: int) -> bytes:
    return bytes([number]) * FRAME


def test_forgotten_frames_leave_the_file_and_later_ones_follow_the_rest(tmp_path: Path) -> None:
    recording = Recording(tmp_path, "s1")
    for number in range(4):
        recording.write("system", frame(number))
    recording.forget("system", 2 * FRAME)  # frames 2 and 3 were never acknowledged
    recording.write("system", frame(9))
    recording.forget("mic", FRAME)  # a source with nothing recorded: nothing to cut
    recording.close()
    assert recorded_pcm(tmp_path, "s1") == frame(0) + frame(1) + frame(9)
    assert (tmp_path / recording.dir.name / "system.wav").stat().st_size == 44 + 3 * FRAME


def test_a_stopped_recording_forgets_nothing(tmp_path: Path) -> None:
    recording = Recording(tmp_path, "s2")
    recording.write("system", frame(1))
    recording.failed = "OSError: injected"
    recording.forget("system", FRAME)
    assert recorded_pcm(tmp_path, "s2") == frame(1)
