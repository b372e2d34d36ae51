"""The command driven as a subprocess: the real `live-listener` entry point, real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import wave
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.asr.speech import speech_pcm

CLI = (sys.executable, "-m", "pipeline.cli")
CLIP_SECONDS = 11.0  # two sentences of the bundled recording: finals at ~5 s and ~11 s


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str
    seconds: float


def cli_env(data_home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment, with transcripts defaulting under `data_home` and no stray token."""
    env = {k: v for k, v in os.environ.items() if k != "LIVE_LISTENER_TOKEN"}
    env["XDG_DATA_HOME"] = str(data_home)
    env.update(extra or {})
    return env


async def start_cli(
    *args: str, env: Mapping[str, str], stdin: int | None = asyncio.subprocess.DEVNULL
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        env=dict(env),
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process, began: float, timeout: float) -> Ran:
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode(), time.monotonic() - began)


async def run_cli(*args: str, env: Mapping[str, str], timeout: float = 60.0) -> Ran:
    began = time.monotonic()
    return await finish(await start_cli(*args, env=env), began, timeout)


def jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file (every line must parse)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


async def wait_for_finals(path: Path, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        finals = [r for r in jsonl(path) if r["type"] == "final"]
        if len(finals) >= count:
            return finals
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {count} finals in {path} after {timeout} s")


def write_wav(path: Path, pcm: bytes) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(pcm)
    return path


@pytest.fixture(scope="session")
def speech_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first sentences of the bundled recording ("the weather is nice today ...")."""
    return write_wav(tmp_path_factory.mktemp("clip") / "clip.wav", speech_pcm(CLIP_SECONDS))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path / "data")
