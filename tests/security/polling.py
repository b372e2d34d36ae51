"""Waiting for the backend's own bookkeeping to reach a state (no event exists for it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until_true(check: Callable[[], bool], interval: float = 0.01) -> None:
    while True:
        if check():
            return
        await asyncio.sleep(interval)
