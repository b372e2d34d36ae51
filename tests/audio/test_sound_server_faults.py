"""No sound server, no PortAudio, a sound server that dies: clear errors, never a hang.

Each case runs `capture_child` in a fresh process: PortAudio reads the environment and
lists devices when it loads, so these cases need a PortAudio of their own.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from tests.audio.pulse import start_pulse

CHILD = [sys.executable, "-m", "tests.audio.capture_child"]
ROOT = Path(__file__).resolve().parents[2]


def isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This environment minus any sound server: PULSE_SERVER points at nothing, and
    client autospawn is off, so no daemon appears behind the test's back."""
    runtime, config = tmp_path / "xdg", tmp_path / "cfg"
    runtime.mkdir(mode=0o700)
    (config / "pulse").mkdir(parents=True)
    (config / "pulse" / "client.conf").write_text("autospawn = no\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    env.update(
        XDG_RUNTIME_DIR=str(runtime),
        XDG_CONFIG_HOME=str(config),
        PULSE_SERVER=f"unix:{tmp_path}/nothing-here/native",
    )
    env.update(extra)
    return env


async def run_child(env: dict[str, str], *args: str, timeout: float = 30) -> list[dict[str, Any]]:
    child = await asyncio.create_subprocess_exec(
        *CHILD, *args, env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(child.communicate(), timeout)
    assert child.returncode == 0
    return [json.loads(line) for line in out.decode().splitlines()]


async def test_without_a_sound_server_the_error_names_cause_and_fix(tmp_path: Path) -> None:
    events = await run_child(isolated_env(tmp_path), "--seconds", "5")
    assert events[0] == {"event": "devices", "count": 0}
    error = events[-1]
    assert (error["event"], error["type"]) == ("error", "AudioDeviceError")
    assert "no audio input device" in error["message"]
    assert "start a sound server" in error["message"]
    assert "pulseaudio --start" in error["message"]


async def test_without_portaudio_the_error_says_what_to_install(tmp_path: Path) -> None:
    events = await run_child(isolated_env(tmp_path), "--without-portaudio")
    assert len(events) == 1
    error = events[0]
    assert (error["event"], error["type"]) == ("error", "AudioDeviceError")
    assert "PortAudio library is not installed" in error["message"]
    assert "apt-get install libportaudio2" in error["message"]


async def test_a_sound_server_dying_mid_capture_ends_the_stream_with_an_error(
    tmp_path: Path,
) -> None:
    server = start_pulse(tmp_path / "doomed")
    try:
        child = await asyncio.create_subprocess_exec(
            *CHILD,
            "--stall",
            "2",
            env=server.client_env(),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        assert child.stdout is not None
        events: list[dict[str, Any]] = []
        while not events or events[-1]["event"] != "capturing":
            line = await asyncio.wait_for(child.stdout.readline(), 15)
            assert line, f"the child ended early: {events}"
            events.append(json.loads(line))
        server.process.kill()  # a crash, not a clean exit
        server.process.wait(5)
        out, _ = await asyncio.wait_for(child.communicate(), 15)  # no hang
        assert child.returncode == 0
        error = json.loads(out.decode().splitlines()[-1])
        assert (error["event"], error["type"]) == ("error", "AudioDeviceError")
        assert "went away" in error["message"] or "sound server" in error["message"]
        assert error["frames"] > 0
    finally:
        server.stop()
