"""A session that moved between instances is recorded in segments, one per instance and
attempt; assembled, they hold each byte of the source's audio once."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.recording import Recording, RecordingGap, assemble, segments

FRAME = 640


def frames(first: int, last: int) -> bytes:
    return b"".join(bytes([n]) * FRAME for n in range(first, last))


def record(root: Path, attempt: int, starts: dict[str, int], pcm: bytes) -> Recording:
    recording = Recording(root, "talk")
    recording.segment(attempt, starts)
    for offset in range(0, len(pcm), FRAME):
        recording.write("system", pcm[offset : offset + FRAME])
    recording.close()
    return recording


def test_a_later_attempt_replaces_what_an_earlier_one_recorded_past_its_start(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    record(first, 1, {}, frames(0, 10))  # frames 7..9 never acknowledged
    record(second, 2, {"system": 7 * FRAME}, frames(7, 12))
    record(first, 3, {"system": 12 * FRAME}, frames(12, 15))  # back on the first instance
    assert [(s.attempt, s.start) for s in segments([first, second], "talk", "system")] == [
        (1, 0),
        (2, 7 * FRAME),
        (3, 12 * FRAME),
    ]
    assert assemble([first, second], "talk") == frames(0, 15)
    assert (first / Recording(first, "talk").dir.name / "system.1.0.wav").stat().st_size == (
        44 + 10 * FRAME
    )


def test_a_stale_attempt_writing_late_is_cut_where_the_next_one_began(tmp_path: Path) -> None:
    record(tmp_path, 2, {"system": 0}, frames(0, 5))
    record(tmp_path, 3, {"system": 3 * FRAME}, frames(3, 8))
    stale = Recording(tmp_path, "talk")
    stale.segment(2, {"system": 0})
    stale.write("system", bytes([99]) * FRAME)  # frozen, woke up, wrote once more
    stale.close()
    assert assemble([tmp_path], "talk") == frames(0, 8)


def test_a_segment_that_begins_past_what_was_recorded_is_a_gap(tmp_path: Path) -> None:
    record(tmp_path, 1, {}, frames(0, 3))
    record(tmp_path, 2, {"system": 5 * FRAME}, frames(5, 6))
    with pytest.raises(RecordingGap, match="bytes 1920 to 3200 missing"):
        assemble([tmp_path], "talk")
    assert assemble([tmp_path], "talk", "mic") == b""  # a source never recorded: nothing


def test_the_assemble_command_writes_one_wav(tmp_path: Path) -> None:
    import wave

    from backend.deploy.assemble import main

    record(tmp_path / "a", 1, {}, frames(0, 4))
    record(tmp_path / "b", 2, {"system": 2 * FRAME}, frames(2, 6))
    out = tmp_path / "talk.wav"
    assert (
        main([str(tmp_path / "a"), str(tmp_path / "b"), "--session", "talk", "-o", str(out)]) == 0
    )
    with wave.open(str(out)) as wav:
        assert wav.readframes(wav.getnframes()) == frames(0, 6)
    record(tmp_path / "a", 3, {"system": 9 * FRAME}, frames(9, 10))
    assert main([str(tmp_path / "a"), "--session", "talk", "-o", str(out)]) == 1


def test_a_segment_forgets_nothing_at_a_graceful_shutdown(tmp_path: Path) -> None:
    """Frames not yet acknowledged may be in the shared store already: the next attempt
    begins where the store's copy ends, and the cut is made there, not here."""
    recording = Recording(tmp_path, "talk")
    recording.segment(1, {})
    for number in range(6):
        recording.write("system", frames(number, number + 1))
    recording.forget("system", 3 * FRAME)  # frames 3..5 unacknowledged; 3 and 4 in the store
    recording.close()
    record(tmp_path, 2, {"system": 5 * FRAME}, frames(5, 8))
    assert assemble([tmp_path], "talk") == frames(0, 8)
