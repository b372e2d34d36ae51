"""A bounded pool of decoder processes, shared by every session of one backend.

A decoder process costs ~125 MB and ~0.4 s to start (mostly building the decoder), so
decoder processes are kept and reused across sessions, and at most `size` are leased at
once — one per source being recognised. Leasing is instant and starts nothing (it runs on the
event loop); the process is taken from the idle ones, or started, on the recogniser's
first call, on an executor thread.

When all `size` are leased, `lease()` raises `PoolExhausted`; the backend then streams
that source without recognition, records it, and tells the client (`no_asr_provider`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

from backend.asr import Hypothesis, RecognizerUnavailable
from backend.decoder_worker import DecoderWorker, RecognizerError
from backend.pocketsphinx_asr import PARTIAL_INTERVAL_S


class PoolExhausted(RecognizerUnavailable):
    """Every decoder of the pool is leased."""


@dataclass(frozen=True)
class PoolStats:
    size: int
    leased: int
    idle: int
    started: int
    reused: int
    refused: int
    peak_leased: int


class DecoderPool:
    """At most `size` decoder processes leased at once; released ones wait idle for reuse."""

    def __init__(self, size: int, start: Callable[[], DecoderWorker] = DecoderWorker) -> None:
        if size < 1:
            raise ValueError("a decoder pool needs room for at least one decoder")
        self.size = size
        self._start = start
        self._lock = threading.Lock()
        self._idle: list[DecoderWorker] = []
        self._leased = 0
        self._started = self._reused = self._refused = self._peak = 0
        self._closed = False

    def lease(self) -> DecoderLease:
        """A claim on one decoder; raises PoolExhausted when `size` are already leased."""
        with self._lock:
            if self._closed:
                raise RecognizerUnavailable("the speech recogniser is shutting down")
            if self._leased >= self.size:
                self._refused += 1
                raise PoolExhausted(
                    f"all {self.size} speech recognisers are in use; "
                    "this source is recorded but not transcribed"
                )
            self._leased += 1
            self._peak = max(self._peak, self._leased)
        return DecoderLease(self)

    def _take(self) -> DecoderWorker:
        with self._lock:
            if self._idle:
                self._reused += 1
                return self._idle.pop()
            self._started += 1
        return self._start()  # outside the lock: the caller waits for it to be ready

    def _give_back(self, worker: DecoderWorker | None) -> None:
        with self._lock:
            self._leased -= 1
            keep = worker is not None and not worker.broken and not self._closed
            if keep:
                assert worker is not None
                self._idle.append(worker)
        if worker is not None and not keep:
            worker.stop()

    def stats(self) -> PoolStats:
        with self._lock:
            return PoolStats(
                size=self.size,
                leased=self._leased,
                idle=len(self._idle),
                started=self._started,
                reused=self._reused,
                refused=self._refused,
                peak_leased=self._peak,
            )

    def worker_pids(self) -> list[int]:
        """Process ids of the idle decoder processes (for measurements)."""
        with self._lock:
            return [w.pid for w in self._idle if w.pid is not None]

    def close(self) -> None:
        """Stop the idle processes; leased ones stop when given back. Blocks briefly."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()


class DecoderLease:
    """One recogniser's claim on a decoder process."""

    def __init__(self, pool: DecoderPool) -> None:
        self._pool = pool
        self._worker: DecoderWorker | None = None
        self._released = False

    def worker(self) -> DecoderWorker:
        """The leased process: an idle one, or a new one (blocking, ~0.4 s, on first use)."""
        if self._released:
            raise RuntimeError("this decoder lease was released")
        if self._worker is None:
            self._worker = self._pool._take()
        return self._worker

    def release(self) -> None:
        """Hand the process back (between utterances) or stop it if broken. Idempotent."""
        if not self._released:
            self._released = True
            self._pool._give_back(self._worker)
            self._worker = None


class PooledRecognizer:
    """The backend's pocketsphinx recogniser: backend.asr.Recognizer over a leased process.

    Blocking (each call waits for the process): run it in an executor, one call at a time.
    Raises RecognizerError (backend.decoder_worker) when the process fails.
    """

    def __init__(
        self,
        pool: DecoderPool,
        *,
        partial_interval: float = PARTIAL_INTERVAL_S,
        adaptation: str | None = None,
    ) -> None:
        self._lease = pool.lease()
        self._partial_interval = partial_interval
        self._adaptation = adaptation
        self._opened = False

    def _call(self, op: str, arg: object = None) -> list[Hypothesis]:
        worker = self._lease.worker()
        if not self._opened:
            worker.call("open", (self._partial_interval, self._adaptation))
            self._opened = True
        result: list[Hypothesis] = worker.call(op, arg)
        return result

    def process(self, pcm: bytes) -> list[Hypothesis]:
        return self._call("process", pcm)

    def finish(self) -> list[Hypothesis]:
        return self._call("finish")

    def close(self) -> None:
        """End the stream and give the process back; a process that fails here is stopped."""
        if self._opened:
            with contextlib.suppress(RecognizerError):  # it is marked broken: not kept
                self._lease.worker().call("close")
        self._lease.release()


class PocketsphinxRecognizers:
    """The `pocketsphinx` RecognizerFactory: recognisers sharing one pool of `size` decoders."""

    def __init__(self, size: int, *, partial_interval: float = PARTIAL_INTERVAL_S) -> None:
        self.pool = DecoderPool(size)
        self.partial_interval = partial_interval

    def __call__(self, adaptation: str | None = None) -> PooledRecognizer:
        return PooledRecognizer(
            self.pool, partial_interval=self.partial_interval, adaptation=adaptation
        )

    def close(self) -> None:
        self.pool.close()
