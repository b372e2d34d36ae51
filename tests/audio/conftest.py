"""Fixtures of the audio tests: a private PulseAudio daemon with a null sink, and speech.

The daemon is started by the session-scoped `pulse` fixture (nothing is started by hand)
and its address is put into this process's environment while it runs, because the capture
runs in this process: PortAudio (through sounddevice) reads it when it opens a device.
sounddevice is imported lazily by `pipeline.capture`, so no test module loads PortAudio
at collection time, before the daemon exists — and should anything load it earlier,
`list_devices()` scans again when it sees no input device at all.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audio.pulse import PulseServer, start_pulse

SPEECH = (
    "The quick brown fox jumps over the lazy dog. "
    "Live listener keeps every frame while the network is down, "
    "and sends it when the backend comes back."
)


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
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few seconds of synthetic English (flite's `rms` voice, 16 kHz mono)."""
    if shutil.which("flite") is None:
        raise RuntimeError("flite not found: install the Debian package flite (make deps)")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(["flite", "-voice", "rms", "-t", SPEECH, "-o", str(path)], check=True)
    return path
