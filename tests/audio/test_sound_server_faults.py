"""No sound server, no PortAudio, a sound server that dies: clear errors, never a hang.

Each case runs `capture_child` in a fresh process: PortAudio reads the environment and
lists devices when it loads, so these cases need a PortAudio of their own.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
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


async def start_and_kill(
    tmp_path: Path, *args: str, how: signal.Signals = signal.SIGKILL
) -> dict[str, Any]:
    """Run the child against a private daemon; once it captures, kill the daemon (a crash,
    not a clean exit) or freeze it (SIGSTOP: a hung server). The child's report must come
    promptly — its loop may not block — and the child must then exit (a frozen server is
    killed first: PortAudio cannot close a stream while its server hangs)."""
    server = start_pulse(tmp_path / "doomed")
    try:
        child = await asyncio.create_subprocess_exec(
            *CHILD, *args, env=server.client_env(), cwd=ROOT, stdout=asyncio.subprocess.PIPE
        )
        assert child.stdout is not None
        events: list[dict[str, Any]] = []
        while not events or events[-1]["event"] != "capturing":
            line = await asyncio.wait_for(child.stdout.readline(), 15)
            assert line, f"the child ended early: {events}"
            events.append(json.loads(line))
        server.process.send_signal(how)
        line = await asyncio.wait_for(child.stdout.readline(), 15)
        assert line, "the child ended without a report"
        last: dict[str, Any] = json.loads(line)
        server.process.kill()
        await asyncio.wait_for(child.wait(), 15)
        assert child.returncode == 0
        return last
    finally:
        server.process.kill()
        server.process.wait(5)


async def test_a_sound_server_dying_mid_capture_ends_the_stream_with_an_error(
    tmp_path: Path,
) -> None:
    error = await start_and_kill(tmp_path, "--stall", "2")
    assert (error["event"], error["type"]) == ("error", "AudioDeviceError")
    assert "sound server went away" in error["message"]
    assert "restart it" in error["message"]
    assert error["frames"] > 0


async def test_a_sound_server_that_hangs_is_noticed_by_the_watchdog(tmp_path: Path) -> None:
    error = await start_and_kill(tmp_path, "--stall", "1.5", how=signal.SIGSTOP)
    assert (error["event"], error["type"]) == ("error", "AudioDeviceError")
    assert "no audio from the input device for 1.5 s" in error["message"]


async def test_a_session_whose_device_dies_delivers_what_it_captured_and_fails_clearly(
    tmp_path: Path,
) -> None:
    result = await start_and_kill(tmp_path, "--session", "--stall", "2", "--seconds", "30")
    assert result["event"] == "report"
    assert (result["outcome"], result["failure_kind"]) == ("failed", "audio")
    assert "sound server went away" in result["reason"]
    assert result["captured"] > 0
    assert result["recorded_frames"] == result["captured"]  # nothing captured was lost


async def test_a_sound_server_hanging_before_the_device_opens_is_an_error_not_a_freeze(
    tmp_path: Path,
) -> None:
    """Opening a device talks to the server; frozen, it would block the loop forever."""
    server = start_pulse(tmp_path / "frozen")
    try:
        child = await asyncio.create_subprocess_exec(
            *CHILD,
            "--wait",
            "--start",
            "2",
            env=server.client_env(),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert child.stdin is not None
        assert child.stdout is not None
        listed = json.loads(await asyncio.wait_for(child.stdout.readline(), 15))
        assert listed["event"] == "devices"
        assert listed["count"] > 0
        server.process.send_signal(signal.SIGSTOP)
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        error = json.loads(await asyncio.wait_for(child.stdout.readline(), 15))
        assert (error["event"], error["type"]) == ("error", "AudioDeviceError")
        assert "delivered no audio within 2.0 s of starting" in error["message"]
        server.process.kill()
        await asyncio.wait_for(child.wait(), 15)
    finally:
        server.process.kill()
        server.process.wait(5)
