"""Fixtures of the audio tests: speech to play into the null sink (the sound server
itself is the `pulse` fixture of tests/conftest.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SPEECH = (
    "The quick brown fox jumps over the lazy dog. "
    "Live listener keeps every frame while the network is down, "
    "and sends it when the backend comes back."
)


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few seconds of synthetic English (flite's `rms` voice, 16 kHz mono)."""
    if shutil.which("flite") is None:
        raise RuntimeError("flite not found: install the Debian package flite (make deps)")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(["flite", "-voice", "rms", "-t", SPEECH, "-o", str(path)], check=True)
    return path
