"""The session for code without an event loop: scripts and GUI threads.

    with BlockingSession(config, audio) as session:
        for event in session:       # the same events as `async for` (pipeline.events)
            print(event)
    session.report.raise_for_failure()

The session runs on its own event loop in a daemon thread; iterating asks that loop for
the next event (the queue is the same bounded one: a slow consumer misses events, counted
in `Missed`, and never stalls the audio). `stop()`, `retry_now()` and `current` may be
called from any thread. Leaving the block — normally, by an exception or by Ctrl-C in the
iterating thread — stops the session cleanly: stop sent, summary awaited, report built.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from types import TracebackType
from typing import Any

from reactivex import Observable

from pipeline.audio import AudioFrame
from pipeline.config import SessionConfig
from pipeline.events import MAX_EVENTS, EventFeed, SessionEvent
from pipeline.report import SessionReport
from pipeline.session import Session
from pipeline.state import AppState


class BlockingSession:
    """A `Session` driven from a thread that has no event loop. Runs once."""

    def __init__(
        self,
        config: SessionConfig,
        audio: Observable[AudioFrame],
        *,
        max_events: int = MAX_EVENTS,
        **session_options: Any,
    ) -> None:
        self._session_args = (config, audio, session_options)
        self._max_events = max_events
        self._started: Future[tuple[asyncio.AbstractEventLoop, EventFeed]] = Future()
        self._closing: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="live-listener", daemon=True)
        self._report: SessionReport | None = None
        self._error: BaseException | None = None

    def _main(self) -> None:
        try:
            self._report = asyncio.run(self._serve())
        except BaseException as exc:  # handed to the caller's thread in __exit__
            self._error = exc
            if not self._started.done():
                self._started.set_exception(exc)

    async def _serve(self) -> SessionReport:
        self._closing = asyncio.Event()
        config, audio, options = self._session_args
        feed = EventFeed(Session(config, audio, **options), self._max_events)
        self._started.set_result((asyncio.get_running_loop(), feed))
        await self._closing.wait()  # the loop outlives the session: events may still be read
        return await feed.close()

    def __enter__(self) -> BlockingSession:
        self._thread.start()
        self._started.result()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> SessionReport:
        """Stop the session if it still runs (as `Session.stop`) and wait for its report."""
        loop, _ = self._started.result()
        if self._thread.is_alive():
            loop.call_soon_threadsafe(self._set_closing)
            self._thread.join()
        if self._error is not None:
            raise self._error
        return self.report

    def _set_closing(self) -> None:
        assert self._closing is not None
        self._closing.set()

    def __iter__(self) -> Iterator[SessionEvent]:
        loop, feed = self._started.result()
        while True:
            try:
                yield asyncio.run_coroutine_threadsafe(feed.queue.get(), loop).result()
            except StopAsyncIteration:
                return

    def stop(self, timeout: float | None = None) -> None:
        """End capture, deliver what is held, send `stop`, wait for the summary (blocks)."""
        loop, feed = self._started.result()
        asyncio.run_coroutine_threadsafe(feed.session.stop(timeout), loop).result()

    def retry_now(self) -> bool:
        """`Session.retry_now` from any thread."""
        loop, feed = self._started.result()

        async def skip() -> bool:
            return feed.session.retry_now()

        return asyncio.run_coroutine_threadsafe(skip(), loop).result()

    @property
    def current(self) -> AppState:
        """The latest state (an immutable value, safe to read from any thread)."""
        return self._started.result()[1].session.current

    def retry_in(self) -> float | None:
        """Seconds until the pending reconnection attempt, else None."""
        return self._started.result()[1].session.retry_in()

    @property
    def report(self) -> SessionReport:
        if self._report is None:
            raise RuntimeError("the session has not ended")
        return self._report
