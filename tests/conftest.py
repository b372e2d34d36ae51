"""Shared fixtures: a real embedded backend on a loopback port, per test; a private sound
server for the tests that capture audio; every log line of the run captured and scanned for
test tokens (tests/log_capture.py).

The sound server (a PulseAudio daemon with a null sink, see tests/audio/pulse.py) is
started by the session-scoped `pulse` fixture (nothing is started by hand) and its
address is put into this process's environment while it runs, because capture may run in
this process: PortAudio (through sounddevice) reads it when it opens a device.
sounddevice is imported lazily by `pipeline.capture`, so no test module loads PortAudio
at collection time, before the daemon exists — and should anything load it earlier,
`list_devices()` scans again when it sees no input device at all. Subprocesses get the
address with `pulse.client_env()`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from backend.config import BackendConfig
from backend.server import RunningBackend, running_backend
from tests.audio.pulse import PulseServer, start_pulse
from tests.log_capture import pytest_sessionfinish, suite_log
from tests.wheel import Venv, build_wheel, client_venv, full_venv

__all__ = ["pytest_sessionfinish", "suite_log"]  # the suite-wide log capture and token scan
pytest_plugins = ["pytester"]  # runs a pytest inside a test (tests/integration/test_secrets.py)

# Hypothesis's default 200 ms deadline per example is a wall-clock figure: on a busy machine
# a slow example fails as "flaky" though nothing is wrong. Properties are judged by their
# outcome only; tests that need fewer or more examples set their own `settings`.
settings.register_profile("suite", deadline=None, print_blob=True)
settings.load_profile("suite")

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


@pytest.fixture(scope="session")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseServer]:
    server = start_pulse(tmp_path_factory.mktemp("pulse"))
    try:
        with pytest.MonkeyPatch.context() as env:
            for name, value in server.env.items():
                env.setenv(name, value)
            yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this tree, built once per run."""
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def client_install(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Venv:
    """A fresh venv with `pip install live-listener` (no recogniser, no backend extras)."""
    return client_venv(tmp_path_factory.mktemp("venv") / "client", wheel)


@pytest.fixture(scope="session")
def full_install(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Iterator[Venv]:
    """A fresh venv with `pip install live-listener[backend]` and a Jupyter kernel; Jupyter
    finds that kernel (the notebooks run there) while the fixture lives."""
    venv = full_venv(tmp_path_factory.mktemp("venv") / "full", wheel)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JUPYTER_PATH", str(venv.jupyter_path))
        yield venv
