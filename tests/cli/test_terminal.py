"""The live view on a real terminal: the demo runs in a tmux pane whose screen is read back.

tmux gives the command a pseudo-terminal, so the console sink picks the live display;
`capture-pane` returns what a person would see at that moment.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from tests.cli.conftest import CLI, cli_env

EXIT_MARK = "command exited with"


class Pane:
    """One tmux server of our own (its own socket) with one pane running `command`."""

    def __init__(
        self, root: Path, command: list[str], env: dict[str, str], *, survive_ctrl_c: bool = False
    ) -> None:
        """`survive_ctrl_c`: the pane's shell outlives a Ctrl-C aimed at the command (a
        trap, not an ignore: the command still gets the terminal's SIGINT)."""
        if shutil.which("tmux") is None:
            raise RuntimeError("tmux not found: install the Debian package tmux (make deps)")
        self.socket = root / "tmux.sock"
        script = f"{shlex.join(command)}; echo {EXIT_MARK} $?; sleep 60"
        if survive_ctrl_c:
            script = f"trap true INT; {script}"
        self.tmux("new-session", "-d", "-x", "100", "-y", "34", "sh", "-c", script, env=env)

    def tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
        return done.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p")

    def close(self) -> None:
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], check=False, timeout=10)


def captured(screen: str) -> int:
    found = re.search(r"captured (\d+)", screen)
    assert found, screen
    return int(found.group(1))


async def test_the_live_view_updates_in_place(speech_clip: Path, tmp_path: Path) -> None:
    command = [*CLI, "demo", "--file", str(speech_clip), "--outage", "2"]
    command += ["--transcript", str(tmp_path / "demo")]
    pane = Pane(tmp_path, command, cli_env(tmp_path / "data"))
    try:
        screens: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            screens.append(pane.screen())
            if EXIT_MARK in screens[-1]:
                break
            await asyncio.sleep(0.1)
        final = screens[-1]
    finally:
        pane.close()
    live = [s for s in screens if "phase" in s and "streaming (protocol v0.3)" in s]
    assert len(live) >= 2, screens[-1]
    first, later = live[0], live[-1]
    assert first != later and captured(later) > captured(first)
    for label in ("phase", "level", "frames", "session", "transcript"):
        assert re.search(rf"^{label}\s", later, re.MULTILINE), later
    assert re.search(r"system\s+█+·*\s+-\d+\.\d dBFS", "\n".join(live))
    retries = [s for s in screens if re.search(r"^retry\s+attempt \d+ in \d+\.\d s", s, re.M)]
    assert retries, "the countdown to the next retry never showed"
    assert "reconnecting" in retries[0]
    assert f"{EXIT_MARK} 0" in final
    assert "frames lost  0" in final and "reconnects   1 (resumed 1" in final
    assert re.search(r"^phase\s+stopped", final, re.MULTILINE)
    assert screens.count(final) < len(screens)  # the screen did change along the way
