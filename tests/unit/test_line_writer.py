"""The event-line writer never blocks its caller: against a pipe nobody reads, lines past
its bound are dropped and counted, and the reader is told how many it missed."""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
from collections.abc import Iterator

import pytest

from sinks.line_writer import LineWriter

PIPE_BYTES = 4096  # the smallest pipe buffer Linux allows (one page)
LINE = "x" * 1023 + "\n"  # four fill the pipe


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    try:
        yield read, write
    finally:
        for fd in (read, write):
            with contextlib.suppress(OSError):
                os.close(fd)


def _missed(count: int) -> str:
    return json.dumps({"type": "missed", "count": count}) + "\n"


def _read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode()


def _read_some(fd: int) -> str:
    """What a non-blocking pipe holds now."""
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    return b"".join(chunks).decode()


def test_a_pipe_nobody_reads_never_blocks_the_writer(pipe: tuple[int, int]) -> None:
    read, write = pipe
    with os.fdopen(write, "w", closefd=False) as out:
        writer = LineWriter(out, _missed, max_lines=8, drain_s=0.1)
        for _ in range(100):  # returns although nothing reads: the test would hang otherwise
            writer.write(LINE)
        assert writer.queued + writer.dropped == 100
        assert writer.dropped >= 100 - 8 - PIPE_BYTES // len(LINE) - 1
        assert writer.close() is False  # the rest could not be written in time
        written = writer.written
    os.close(write)
    lines = _read_all(read).splitlines(keepends=True)
    # what was written is whole lines, in order: those counted at the close, and perhaps
    # the one the writer's thread was blocked on, which completes once the pipe is read
    # (its count may land after this read; any later write finds the descriptor closed)
    whole = [line for line in lines if line.endswith("\n")]
    assert whole == [LINE] * len(whole)
    assert len(whole) in (written, written + 1)


def test_a_reader_that_catches_up_is_told_what_it_missed(pipe: tuple[int, int]) -> None:
    read, write = pipe
    with os.fdopen(write, "w", closefd=False) as out:
        writer = LineWriter(out, _missed, max_lines=8, drain_s=5.0)
        for _ in range(100):
            writer.write(LINE)
        dropped = writer.dropped
        assert dropped > 0
        os.set_blocking(read, False)
        received: list[str] = []
        while writer.written < writer.queued:  # read what the writer got through
            received.append(_read_some(read))
        received.append(_read_some(read))  # the pipe is empty after this
        writer.write("last\n")  # the next line is announced by how many were missed
        assert writer.close() is True
    os.close(write)
    os.set_blocking(read, True)
    lines = ("".join(received) + _read_all(read)).splitlines(keepends=True)
    assert lines == [LINE] * (100 - dropped) + [_missed(dropped), "last\n"]


def test_an_in_memory_stream_gets_every_line() -> None:
    out = io.StringIO()
    writer = LineWriter(out, _missed, max_lines=1)
    for number in range(5):
        writer.write(f"{number}\n")
    assert writer.close() is True and writer.dropped == 0
    assert out.getvalue() == "0\n1\n2\n3\n4\n"
