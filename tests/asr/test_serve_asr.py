"""`live-listener serve --asr ...`: the flag, and a real server process transcribing."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import numpy as np
import psutil
import pytest

from backend.server import free_port
from pipeline.cli import build_parser
from pipeline.cli.demo import DemoOptions
from pipeline.config import SessionConfig
from pipeline.session import Session
from pipeline.sources import from_samples
from tests.asr.speech import speech_pcm, words


def test_pocketsphinx_is_the_default_recogniser() -> None:
    parser = build_parser()
    assert parser.parse_args(["serve"]).asr == "pocketsphinx"
    assert parser.parse_args(["serve", "--asr", "none"]).asr == "none"
    assert parser.parse_args(["serve", "--asr-decoders", "2"]).asr_decoders == 2
    assert parser.parse_args(["demo"]).asr == "pocketsphinx"
    assert DemoOptions().asr == "pocketsphinx"


def test_an_unknown_recogniser_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["serve", "--asr", "whisper"])
    assert exit_info.value.code == 2
    assert "pocketsphinx" in capsys.readouterr().err


def test_no_decoders_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["serve", "--asr-decoders", "0"])
    assert exit_info.value.code == 2
    assert "at least 1" in capsys.readouterr().err


async def _wait_for_port(port: int, server: asyncio.subprocess.Process) -> None:
    for _ in range(200):
        assert server.returncode is None, "the server exited"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError("the server never listened")


async def test_serve_transcribes_and_leaves_no_decoder_behind() -> None:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "pipeline.cli", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await _wait_for_port(port, server)
        audio = np.frombuffer(speech_pcm(5.0), dtype="<i2")
        session = Session(
            SessionConfig(url=f"ws://127.0.0.1:{port}"), from_samples(audio, realtime=False)
        )
        report = await session.run()
        decoders = psutil.Process(server.pid).children()
        assert len(decoders) == 1  # one decoder process, kept for the next session
    finally:
        server.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(server.wait(), 15)
    assert code == 0
    assert words(report.text)[:4] == ["the", "weather", "is", "nice"]
    for child in decoders:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
