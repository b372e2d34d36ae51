"""The command line's loop: uvloop when installed, asyncio's when told or without it."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from pipeline import event_loop


async def loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_the_environment_keeps_the_standard_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.ENV, "asyncio")
    assert event_loop.loop_factory() is None and event_loop.loop_name() == "asyncio"
    assert event_loop.run(loop_module()).startswith("asyncio")


def test_uvloop_runs_the_command_exactly_when_it_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(event_loop.ENV, raising=False)
    installed = importlib.util.find_spec("uvloop") is not None
    assert event_loop.loop_name() == ("uvloop" if installed else "asyncio")
    assert event_loop.run(loop_module()).startswith("uvloop" if installed else "asyncio")
