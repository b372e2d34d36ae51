"""Shared fixtures: a real embedded backend on a loopback port, per test; every log line of
the run captured and scanned for test tokens (tests/log_capture.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from backend.config import BackendConfig
from backend.server import RunningBackend, running_backend
from tests.log_capture import pytest_sessionfinish, suite_log

__all__ = ["pytest_sessionfinish", "suite_log"]  # the suite-wide log capture and token scan
pytest_plugins = ["pytester"]  # runs a pytest inside a test (tests/integration/test_secrets.py)

BackendFactory = Callable[..., AbstractAsyncContextManager[RunningBackend]]


@pytest.fixture
def record_dir(tmp_path: Path) -> Path:
    path = tmp_path / "recordings"
    path.mkdir()
    return path


@pytest.fixture
def make_backend(record_dir: Path) -> BackendFactory:
    """`async with make_backend(token="x") as backend:` — a backend recording to `record_dir`."""

    def factory(**overrides: Any) -> AbstractAsyncContextManager[RunningBackend]:
        port = overrides.pop("port", 0)
        store = overrides.pop("store", None)
        overrides.setdefault("record_dir", record_dir)
        return running_backend(BackendConfig(**overrides), port=port, store=store)

    return factory


@pytest.fixture
async def backend(make_backend: BackendFactory) -> AsyncIterator[RunningBackend]:
    async with make_backend() as running:
        yield running
