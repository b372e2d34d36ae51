"""A process that owns one pocketsphinx decoder and runs one recogniser on it at a time.

pocketsphinx holds the GIL for every call (`end_utt` ~0.2 s per utterance), so decoding
on a thread of the backend stalls its event loop: measured, 0.17-0.32 s of loop lag at
each utterance end with one decoding thread, ~4 ms with the same work in a process
(benchmarks/asr_rtf.py). Decoders therefore live in worker processes, and the backend's
threads only wait on their pipes (which releases the GIL).

The worker is a fresh interpreter (`python -m backend.decoder_worker FD`), not a
multiprocessing child: nothing of the backend's own program is imported again in it, so
scripts need no `__main__` guard. Parent and worker exchange pickled messages over a
socket pair (`multiprocessing.connection.Connection`), one request at a time: `open` (a
new recogniser on the kept decoder, from a saved adaptation or afresh), `process`,
`finish`, `close`, `quit`. The worker exits when the socket closes, so it never outlives
the backend.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 60.0  # a cold start imports pocketsphinx and builds the decoder (~0.4 s)
CALL_TIMEOUT_S = 60.0  # far above any call (0.5 s of audio takes ~0.1 s)


class RecognizerError(RuntimeError):
    """The decoder process failed a request, died, or stopped answering."""


def serve(conn: Connection) -> None:
    """The worker's main loop (in the child process)."""
    from backend.pocketsphinx_asr import PocketsphinxRecognizer, build_decoder

    decoder = build_decoder()
    # The decoder adapts its cepstral mean to what it hears; a reused decoder would start
    # every new stream from the last one's voice, and recognise the same audio differently.
    # A stream taken up from a saved adaptation (a final's) starts from that instead.
    fresh_cmn = decoder.get_cmn(False)
    conn.send(("ready", None))
    recognizer: PocketsphinxRecognizer | None = None
    while True:
        try:
            op, arg = conn.recv()
        except (EOFError, OSError):  # the backend went away
            return
        try:
            if op == "quit":
                return
            if op == "open":
                if recognizer is not None:
                    recognizer.close()
                partial_interval, adaptation = arg
                decoder.set_cmn(fresh_cmn)
                recognizer = PocketsphinxRecognizer(
                    lambda: decoder, partial_interval=partial_interval, adaptation=adaptation
                )
                result: Any = None
            elif recognizer is None:
                raise RuntimeError(f"{op} before open")
            elif op == "process":
                result = recognizer.process(arg)
            elif op == "finish":
                result = recognizer.finish()
            elif op == "close":
                recognizer.close()
                recognizer, result = None, None
            else:
                raise ValueError(f"unknown request {op!r}")
            conn.send(("ok", result))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


def _child_env() -> dict[str, str]:
    """The parent's environment, with the directory holding `backend` on the path."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


class DecoderWorker:
    """The parent's handle on one decoder process. One request at a time (not thread-safe)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "backend.decoder_worker", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env=_child_env(),
                # Its own process group: a terminal's Ctrl-C goes to the foreground group,
                # and must reach only the parent, which still needs the decoder to finish
                # the sentence in progress.
                process_group=0,
            )
            self._conn = Connection(ours.detach())
        self.broken = False
        self._ready = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Block until the decoder is built (the first call does this by itself)."""
        if not self._ready:
            self._receive(timeout, "start")
            self._ready = True

    def call(self, op: str, arg: Any = None, timeout: float = CALL_TIMEOUT_S) -> Any:
        if self.broken:
            raise RecognizerError("the decoder process failed earlier")
        self.wait_ready()
        try:
            self._conn.send((op, arg))
        except (OSError, ValueError) as exc:
            self.broken = True
            raise RecognizerError(f"the decoder process is gone ({exc})") from exc
        return self._receive(timeout, op)

    def _receive(self, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        try:
            while not self._conn.poll(min(1.0, max(0.0, deadline - time.monotonic()))):
                if not self.alive():
                    raise EOFError
                if time.monotonic() >= deadline:
                    self.broken = True
                    raise RecognizerError(f"the decoder process did not answer {what!r}")
            status, result = self._conn.recv()
        except (EOFError, OSError) as exc:
            self.broken = True
            code = self.process.poll()
            raise RecognizerError(f"the decoder process died (exit code {code})") from exc
        if status == "error":
            raise RecognizerError(f"the decoder process failed {what!r}: {result}")
        return result

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the process to quit; kill it if it does not."""
        if self.alive() and not self.broken:
            with contextlib.suppress(OSError, ValueError):
                self._conn.send(("quit", None))
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        if self.alive():
            self.process.kill()
            self.process.wait(timeout)
        self._conn.close()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when a decoder stops
    serve(Connection(int(sys.argv[1])))
