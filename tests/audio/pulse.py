"""A private PulseAudio daemon with a null sink: real PortAudio devices on a machine
without a sound card (the recipe of MACHINE_NOTES.md).

Whatever is played into the sink `virt` (with `paplay`) is what its monitor — the default
source — records. The daemon lives in its own XDG_RUNTIME_DIR under `root`, so it touches
no other sound server; `env` holds what a client needs to reach it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SINK = "virt"
SCRIPT = f"""\
load-module module-native-protocol-unix auth-anonymous=1
load-module module-null-sink sink_name={SINK}
load-module module-sine-source source_name=sine frequency=1234 rate=48000
set-default-sink {SINK}
set-default-source {SINK}.monitor
"""


class PulseError(RuntimeError):
    """The test sound server could not be started."""


@dataclass
class PulseServer:
    root: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str]

    @property
    def log(self) -> Path:
        return self.root / "pa.log"

    def client_env(self) -> dict[str, str]:
        """The current environment pointed at this server (for subprocesses)."""
        return {**os.environ, **self.env}

    def play(self, path: Path) -> subprocess.Popen[bytes]:
        """Start playing a WAV file into the null sink (returns at once)."""
        return subprocess.Popen(
            ["paplay", f"--device={SINK}", str(path)],
            env=self.client_env(),
            stderr=subprocess.PIPE,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (the daemon exits cleanly on it), SIGKILL if it does not."""
        if not self.alive():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)


def start_pulse(root: Path, timeout: float = 10.0) -> PulseServer:
    """Start the daemon and wait until `pactl info` answers."""
    for tool in ("pulseaudio", "pactl", "paplay"):
        if shutil.which(tool) is None:
            raise PulseError(f"{tool} not found: install pulseaudio and pulseaudio-utils")
    runtime, config = root / "xdg", root / "cfg"
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    config.mkdir(parents=True, exist_ok=True)
    (root / "test.pa").write_text(SCRIPT)
    env = {
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CONFIG_HOME": str(config),
        "PULSE_SERVER": f"unix:{runtime}/pulse/native",
    }
    process = subprocess.Popen(
        [
            "pulseaudio",
            "--daemonize=no",
            "-n",
            "-F",
            str(root / "test.pa"),
            "--exit-idle-time=-1",
            f"--log-target=file:{root / 'pa.log'}",
        ],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = PulseServer(root, process, env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise PulseError(f"pulseaudio exited at start; see {server.log}")
        ready = subprocess.run(
            ["pactl", "info"], env=server.client_env(), capture_output=True, check=False
        )
        if ready.returncode == 0:
            return server
        time.sleep(0.1)
    server.stop()
    raise PulseError(f"pulseaudio did not answer within {timeout} s; see {server.log}")
