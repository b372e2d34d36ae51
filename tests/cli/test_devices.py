"""`devices` and capture through the command, with the private sound server of the tests
(a PulseAudio null sink) and with no sound server at all."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from backend.recording import recorded_pcm
from pipeline.audio import SAMPLE_RATE, to_int16
from tests.audio.pulse import PulseServer
from tests.cli.conftest import cli_env, jsonl, run_cli, write_wav
from tests.conftest import BackendFactory


def no_sound_server(tmp_path: Path) -> dict[str, str]:
    """An environment whose sound server address leads nowhere."""
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    return cli_env(
        tmp_path / "data",
        {"XDG_RUNTIME_DIR": str(runtime), "PULSE_SERVER": f"unix:{runtime}/pulse/native"},
    )


def dominant_hz(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.argmax(spectrum) * SAMPLE_RATE / len(samples))


async def test_devices_lists_the_inputs_of_the_sound_server(
    pulse: PulseServer, tmp_path: Path
) -> None:
    ran = await run_cli("devices", env=cli_env(tmp_path, pulse.env))
    assert ran.code == 0, ran.err
    listed = ran.out.splitlines()
    assert any(line.startswith("*") and "default" in line for line in listed)
    assert any("pulse" in line for line in listed)


async def test_no_sound_server_is_a_clear_bad_config(tmp_path: Path) -> None:
    env = no_sound_server(tmp_path)
    for args in (["devices"], ["listen", "--source", "mic"], ["listen", "--source", "system"]):
        ran = await run_cli(*args, env=env)
        assert ran.code == 4, ran.err
        assert ran.err.startswith("live-listener: no audio input device found")
        assert "start a sound server" in ran.err
        assert len(ran.err.strip().splitlines()) == 1


async def test_an_unknown_device_names_the_ones_there_are(
    pulse: PulseServer, tmp_path: Path
) -> None:
    ran = await run_cli(
        "listen", "--source", "mic", "--device", "no-such-mic", env=cli_env(tmp_path, pulse.env)
    )
    assert ran.code == 4
    assert "no-such-mic" in ran.err and "pulse" in ran.err and "--device" in ran.err


async def test_mic_records_the_input_and_system_the_output(
    pulse: PulseServer, make_backend: BackendFactory, record_dir: Path, tmp_path: Path
) -> None:
    """With the default input set to a 1234 Hz sine, `mic` hears the sine and `system`
    hears what is played (997 Hz) — the monitor of the output, not the input. (A monitor
    can take a second or more to deliver its first block, hence three seconds each.)"""
    t = np.arange(6 * SAMPLE_RATE) / SAMPLE_RATE
    played = write_wav(tmp_path / "997.wav", to_int16(0.5 * np.sin(2 * np.pi * 997 * t)).tobytes())
    env = cli_env(tmp_path, {**pulse.env, "PULSE_SOURCE": "sine"})
    heard: dict[str, str] = {}
    async with make_backend() as backend:
        for source in ("mic", "system"):
            player = pulse.play(played)
            ran = await run_cli(
                *("listen", "--url", backend.url, "--source", source, "--duration", "3"),
                *("--transcript", str(tmp_path / source)),
                env=env,
            )
            player.kill()
            await asyncio.to_thread(player.wait)
            assert ran.code == 0, ran.err
            heard[source] = jsonl(tmp_path / f"{source}.jsonl")[-1]["session_id"]
    recordings = {
        source: recorded_pcm(record_dir, session_id, source) for source, session_id in heard.items()
    }
    assert round(dominant_hz(recordings["mic"])) == 1234
    assert round(dominant_hz(recordings["system"])) == 997
