"""Ctrl-C in a real terminal keeps the sentence in progress: the terminal sends SIGINT to
the whole foreground process group, and the recogniser's decoder processes must not be in
it (backend/decoder_worker.py), or the last sentence dies with them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.asr.speech import words
from tests.cli.conftest import CLI, cli_env, jsonl, wait_for_finals
from tests.cli.test_terminal import EXIT_MARK, Pane

SECOND_SENTENCE = set(words("Please send the report to the team before the meeting on Monday."))


async def test_ctrl_c_in_a_terminal_keeps_the_last_sentence(
    speech_clip: Path, tmp_path: Path
) -> None:
    transcript = tmp_path / "demo"
    command = [*CLI, "demo", "--file", str(speech_clip), "--no-outage"]
    command += ["--transcript", str(transcript), "--plain"]
    pane = Pane(tmp_path, command, cli_env(tmp_path / "data"), survive_ctrl_c=True)
    try:
        await wait_for_finals(transcript.with_suffix(".jsonl"), 1, timeout=60)
        await asyncio.sleep(2.5)  # into the second sentence (the demo plays in real time)
        pane.tmux("send-keys", "C-c")
        deadline = time.monotonic() + 60
        while True:
            screen = pane.screen()
            if EXIT_MARK in screen or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
    finally:
        pane.close()
    assert f"{EXIT_MARK} 130" in screen, screen
    finals = [r["text"] for r in jsonl(transcript.with_suffix(".jsonl")) if r["type"] == "final"]
    assert len(finals) == 2, finals
    assert words(finals[0])[:4] == ["the", "weather", "is", "nice"]
    assert len(set(words(finals[1])) & SECOND_SENTENCE) >= 2, finals  # cut, but kept
