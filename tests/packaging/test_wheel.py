"""The wheel as a user installs it, in fresh venvs: the client alone has no recogniser and
says how to get one, the README's quick start runs from it against the embedded backend of
an install with the `backend` extra, and the wheel carries the license and the protocol."""

from __future__ import annotations

import asyncio
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from backend.server import free_port
from pipeline import __version__
from tests.asr.speech import speech_pcm, words
from tests.cli.conftest import write_wav
from tests.wheel import ROOT, Venv

README = ROOT / "README.md"
# building the wheel and two venvs happens in fixtures: only the tests themselves are timed
pytestmark = pytest.mark.timeout(120, func_only=True)


def quick_start() -> str:
    """The first Python block of the README (the async-for example)."""
    found = re.search(r"## Quick start\n.*?```python\n(.*?)```", README.read_text(), re.S)
    assert found is not None, "the README has no quick start example"
    return found[1]


def test_the_wheel_holds_the_four_packages_the_license_and_the_protocol(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        requires = [
            line for line in archive.read(metadata).decode().splitlines() if "Requires-Dist" in line
        ]
    top = {name.split("/")[0] for name in names if "dist-info" not in name}
    assert top == {"pipeline", "operators", "sinks", "backend"}
    assert any(re.search(r"\.dist-info/(licenses/)?LICENSE$", name) for name in names)
    assert "pipeline/PROTOCOL.md" in names and "backend/samples/speech.wav" in names
    pocketsphinx = [line for line in requires if "pocketsphinx" in line]
    assert len(pocketsphinx) == 1 and "extra == 'backend'" in pocketsphinx[0].replace('"', "'")


def test_the_client_alone_has_no_recogniser_and_says_how_to_get_it(
    client_install: Venv, tmp_path: Path
) -> None:
    found = client_install.run(
        "-c", "import importlib.util as u; print(u.find_spec('pocketsphinx'))"
    )
    assert found.stdout.strip() == "None"
    version = subprocess.run([client_install.cli, "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == f"live-listener {__version__}"
    for command in ("serve", "demo"):
        ran = subprocess.run(
            [client_install.cli, command], capture_output=True, text=True, cwd=tmp_path
        )
        assert ran.returncode == 4, ran.stderr
        assert "pip install 'live-listener[backend]'" in ran.stderr
    public = client_install.run("-c", "import pipeline; print(len(dir(pipeline)))", cwd=tmp_path)
    assert int(public.stdout) > 60


async def wait_for_port(port: int, process: asyncio.subprocess.Process) -> None:
    for _ in range(600):  # the recogniser loads first; the served process must stay up
        assert process.returncode is None, "live-listener serve exited"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError(f"nothing listens on {port}")


async def test_the_quick_start_runs_client_only_against_the_served_backend(
    client_install: Venv, full_install: Venv, tmp_path: Path
) -> None:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        str(full_install.cli),
        *("serve", "--port", str(port), "--asr", "pocketsphinx"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        await wait_for_port(port, server)
        talk = write_wav(tmp_path / "talk.wav", speech_pcm(6.0))
        example = quick_start().replace("ws://127.0.0.1:8765", f"ws://127.0.0.1:{port}")
        (tmp_path / "example.py").write_text(example)
        ran = await asyncio.to_thread(client_install.run, "example.py", cwd=tmp_path, timeout=60)
    finally:
        server.terminate()
        await server.wait()
    assert ran.returncode == 0, ran.stderr
    assert "phase streaming" in ran.stdout or "phase finalizing" in ran.stdout
    assert words(ran.stdout)[-20:].count("weather") == 1, ran.stdout
    assert talk.exists()


def test_a_failure_raises_from_the_installed_client(client_install: Venv, tmp_path: Path) -> None:
    example = quick_start().replace("ws://127.0.0.1:8765", f"ws://127.0.0.1:{free_port()}")
    example = example.replace(
        "SessionConfig(url=",
        "SessionConfig(backoff=BackoffPolicy(initial=0.05, max_attempts=1), url=",
    ).replace("from pipeline import ", "from pipeline import BackoffPolicy, ")
    write_wav(tmp_path / "talk.wav", speech_pcm(0.5))
    (tmp_path / "example.py").write_text(example)
    ran = client_install.run("example.py", cwd=tmp_path, timeout=60)
    assert ran.returncode == 1
    assert (
        ran.stderr.strip().splitlines()[-1].startswith("operators.backoff.GaveUp: gave up after 1")
    )
