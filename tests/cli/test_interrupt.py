"""Ctrl-C in a real terminal keeps the sentence in progress: the terminal sends SIGINT to
the whole foreground process group, and the recogniser's decoder processes must not be in
it (backend/decoder_worker.py), or the last sentence dies with them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.asr.speech import words
from tests.cli.conftest import CLI, cli_env, jsonl, wait_for_finals
from tests.cli.test_terminal import EXIT_MARK, Pane
from tests.conftest import BackendFactory

SECOND_SENTENCE = set(words("Please send the report to the team before the meeting on Monday."))


async def test_ctrl_c_in_a_terminal_keeps_the_last_sentence(
    speech_clip: Path, tmp_path: Path
) -> None:
    transcript = tmp_path / "demo"
    command = [*CLI, "demo", "--file", str(speech_clip), "--no-outage"]
    await interrupt_in_the_second_sentence(tmp_path, [*command, "--plain"], transcript)


async def test_ctrl_c_on_listen_in_a_terminal_keeps_the_last_sentence(
    make_backend: BackendFactory, speech_clip: Path, tmp_path: Path
) -> None:
    """`listen` in a terminal, its backend (real pocketsphinx) elsewhere: Ctrl-C cuts the
    second sentence, which still reaches the transcript before the command exits 130."""
    transcript = tmp_path / "listen"
    async with make_backend(asr="pocketsphinx") as backend:
        command = [*CLI, "listen", "--url", backend.url, "--source", f"file:{speech_clip}"]
        records = await interrupt_in_the_second_sentence(tmp_path, command, transcript)
    report = records[-1]  # the live view (no --plain), as a person in a terminal sees it
    assert report["outcome"] == "stopped" and report["frames_lost"] == 0
    counts = report["audio"]["system"]
    assert counts["captured"] == counts["acked"] > 0


async def interrupt_in_the_second_sentence(
    root: Path, command: list[str], transcript: Path
) -> list[dict[str, Any]]:
    """Run `command` in a terminal, press Ctrl-C 2.5 s into the second sentence (the audio
    plays in real time); it exits 130 with both sentences, the second cut but kept.
    Returns the transcript's records."""
    command = [*command, "--transcript", str(transcript)]
    pane = Pane(root, command, cli_env(root / "data"), survive_ctrl_c=True)
    try:
        await wait_for_finals(transcript.with_suffix(".jsonl"), 1, timeout=60)
        await asyncio.sleep(2.5)
        pane.tmux("send-keys", "C-c")
        screen = await _until_exit(pane)
    finally:
        pane.close()
    assert f"{EXIT_MARK} 130" in screen, screen
    records = jsonl(transcript.with_suffix(".jsonl"))
    finals = [r["text"] for r in records if r["type"] == "final"]
    assert len(finals) == 2, finals
    assert words(finals[0])[:4] == ["the", "weather", "is", "nice"]
    assert len(set(words(finals[1])) & SECOND_SENTENCE) >= 2, finals  # cut, but kept
    return records


async def _until_exit(pane: Pane) -> str:
    deadline = time.monotonic() + 60
    while True:
        screen = pane.screen()
        if EXIT_MARK in screen or time.monotonic() > deadline:
            return screen
        await asyncio.sleep(0.1)
