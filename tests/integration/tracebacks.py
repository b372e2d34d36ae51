"""Watch for what a crash leaves behind: an exception in a log, or one the loop never handled.

    with tracebacks() as seen:
        ...                       # drive the backend or a session
    assert seen == []

Collects loguru records carrying an exception, loguru records at ERROR from `backend`,
stdlib `logging` records at ERROR (aiohttp's "Error handling request"), and whatever
reaches the event loop's exception handler (a task that died with nobody awaiting it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from loguru import logger


class _Collect(logging.Handler):
    def __init__(self, seen: list[str]) -> None:
        super().__init__(level=logging.ERROR)
        self.seen = seen

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(f"logging {record.name}: {record.getMessage()}")


def _crash(record: Any) -> bool:
    return record["exception"] is not None or (
        record["level"].no >= logging.ERROR and record["name"].startswith("backend")
    )


@contextmanager
def tracebacks() -> Iterator[list[str]]:
    seen: list[str] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: seen.append(f"loop: {context.get('message')}"))
    sink = logger.add(lambda m: seen.append(f"loguru: {m.record['message']}"), filter=_crash)
    handler = _Collect(seen)
    logging.getLogger().addHandler(handler)
    try:
        yield seen
    finally:
        logging.getLogger().removeHandler(handler)
        logger.remove(sink)
        loop.set_exception_handler(previous)
