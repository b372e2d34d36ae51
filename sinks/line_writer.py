"""Lines to a stream that may stop being read, without ever blocking the caller.

`listen --events jsonl` writes to stdout, and a pipe whose reader stalls blocks a writer
once its buffer is full. Written from the event loop, that would stall the audio path:
heartbeats, acks and capture. So the caller only queues (bounded, never waiting); a
thread does the writing, straight to the file descriptor (`os.write`, so no buffer lock
is held across a blocked write and the interpreter can always exit). Lines that find the
queue full are dropped and counted; the next line that gets through is preceded by
`missed_line(count)` so the reader knows.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable
from typing import IO

MAX_LINES = 1024  # lines queued for a slow reader before new ones are dropped (and counted)
DRAIN_S = 1.0  # at close, how long the writer may take to write what is queued


class LineWriter:
    """`write(line)` never blocks; `close()` waits at most `drain_s` for the rest."""

    def __init__(
        self,
        out: IO[str],
        missed_line: Callable[[int], str],
        *,
        max_lines: int = MAX_LINES,
        drain_s: float = DRAIN_S,
    ) -> None:
        self._missed_line = missed_line
        self._drain_s = drain_s
        self.queued = 0  # lines accepted into the queue
        self.written = 0  # lines written whole
        self.dropped = 0  # lines dropped because the queue was full
        self._unreported = 0  # dropped lines not yet announced by a missed line
        self._queue: queue.Queue[str | None] = queue.Queue(max_lines)
        self._fd = _fileno(out)
        if self._fd is None:  # an in-memory stream: writes cannot block
            self._thread: threading.Thread | None = None
            self._out: IO[str] | None = out
            return
        self._out = None
        out.flush()  # what the stream buffered goes first
        self._thread = threading.Thread(target=self._run, name="event-lines", daemon=True)
        self._thread.start()

    def write(self, line: str) -> None:
        """Queue one line (ending in a newline), or count it as dropped."""
        if self._out is not None:
            self._out.write(line)
            self._out.flush()
            self.queued += 1
            self.written += 1
            return
        if self._unreported and not self._offer(self._missed_line(self._unreported)):
            self._drop()
            return
        self._unreported = 0
        if not self._offer(line):
            self._drop()

    def close(self) -> bool:
        """Stop the writer once it has written what is queued, waiting at most `drain_s`;
        True when everything accepted was written."""
        if self._thread is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=self._drain_s)
            self._thread.join(self._drain_s)
        return self.written == self.queued

    def _offer(self, line: str) -> bool:
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            return False
        self.queued += 1
        return True

    def _drop(self) -> None:
        self.dropped += 1
        self._unreported += 1

    def _run(self) -> None:
        assert self._fd is not None
        while (line := self._queue.get()) is not None:
            data = memoryview(line.encode())
            try:
                while data:
                    data = data[os.write(self._fd, data) :]
            except OSError:  # the reader is gone (EPIPE): nothing more can be written
                return
            self.written += 1


def _fileno(out: IO[str]) -> int | None:
    try:
        return out.fileno()
    except (AttributeError, OSError, ValueError):  # io.StringIO raises UnsupportedOperation
        return None
