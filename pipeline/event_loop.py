"""The event loop a command runs on: uvloop when it is installed, asyncio's otherwise.

uvloop (the `fast` extra: `pip install 'live-listener[fast]'`) runs the same code with
a cheaper loop — timers, socket writes and task wake-ups are what a real-time session
does fifty times a second. `LIVE_LISTENER_LOOP=asyncio` keeps the standard loop even
when uvloop is installed (to compare, or to rule the loop out).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

_T = TypeVar("_T")
ENV = "LIVE_LISTENER_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when installed and not turned off; None: asyncio's default."""
    if os.environ.get(ENV, "").strip().lower() == "asyncio":
        return None
    if importlib.util.find_spec("uvloop") is None:
        return None
    import uvloop

    return uvloop.new_event_loop


def loop_name() -> str:
    return "uvloop" if loop_factory() is not None else "asyncio"


def run(main: Coroutine[Any, Any, _T]) -> _T:
    """`asyncio.run(main)` on the chosen loop (see the module docstring)."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
