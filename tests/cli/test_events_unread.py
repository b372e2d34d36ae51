"""`listen --events jsonl` into a pipe nobody reads: the session is not held up by it. The
audio is streamed and transcribed in full, the command ends, and stderr says how many
event lines were written, which is exactly how many the pipe holds."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
from pathlib import Path

from tests.asr.speech import SPEECH_WAV
from tests.cli.conftest import CLI, jsonl
from tests.conftest import BackendFactory

PIPE_BYTES = 4096  # the smallest pipe buffer: the events of the ten sentences overflow it
FRAMES = 2338  # the bundled recording, in 20 ms frames


async def test_an_unread_event_pipe_holds_nothing_up(
    make_backend: BackendFactory, env: dict[str, str], tmp_path: Path
) -> None:
    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    try:
        async with make_backend(asr="pocketsphinx") as backend:
            process = await asyncio.create_subprocess_exec(
                *CLI,
                *("listen", "--url", backend.url, "--source", f"file:{SPEECH_WAV}"),
                *("--speed", "max", "--events", "jsonl", "--transcript", str(tmp_path / "t")),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=write,
                stderr=asyncio.subprocess.PIPE,
            )
            os.close(write)
            _, err = await asyncio.wait_for(process.communicate(), 60)
        held = b""
        while chunk := os.read(read, 65536):  # every writer has exited: this ends
            held += chunk
    finally:
        os.close(read)

    assert process.returncode == 0, err.decode()
    saved = jsonl(tmp_path / "t.jsonl")
    assert saved[-1]["outcome"] == "completed" and saved[-1]["frames_lost"] == 0
    assert saved[-1]["audio"]["system"]["acked"] == FRAMES
    assert len([r for r in saved if r["type"] == "final"]) == 10
    # the pipe holds whole lines, as many as the command says it wrote
    lines = held.decode().splitlines(keepends=True)
    whole = [json.loads(line) for line in lines if line.endswith("\n")]
    assert whole[0]["type"] == "started"
    said = re.search(r"the event stream was not read: (\d+) of (\d+) lines written", err.decode())
    assert said is not None, err.decode()
    assert int(said[1]) == len(whole) < int(said[2])
