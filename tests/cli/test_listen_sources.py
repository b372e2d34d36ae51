"""`listen --source mic --source system`: two live inputs of the PulseAudio null sink in
one session — each its own stream (own seq, own recording, own meter), both labelled in the
transcript."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import numpy as np

from backend.recording import recorded_pcm
from pipeline.audio import DEFAULT_FRAME_MS, SAMPLE_RATE, to_int16
from tests.audio.pulse import PulseServer
from tests.cli.conftest import CLIP_SECONDS, Ran, cli_env, finish, jsonl, start_cli, write_wav
from tests.cli.test_devices import dominant_hz
from tests.conftest import BackendFactory


async def listen_while_playing(
    pulse: PulseServer, played: Path, env: dict[str, str], record_dir: Path, *args: str
) -> Ran:
    """Play `played` into the sink once the backend records both sources: started before,
    the player's first seconds may go by while the CLI is still starting (under load it
    took long enough to miss the clip's first sentence)."""
    began = time.monotonic()
    process = await start_cli("listen", "--source", "mic", "--source", "system", *args, env=env)
    await recording(record_dir, ("mic", "system"), process)
    player = pulse.play(played)
    try:
        return await finish(process, began, 60.0)
    finally:
        player.kill()
        await asyncio.to_thread(player.wait)


async def recording(
    record_dir: Path, sources: tuple[str, ...], process: asyncio.subprocess.Process
) -> None:
    """Until the backend has audio of every source in `record_dir` (one session's). The
    CLI's own `--duration` bounds the wait: it fails if the CLI ends first."""
    ended = asyncio.create_task(process.wait())
    try:
        while not all(
            any(path.stat().st_size for path in record_dir.glob(f"*/{source}.pcm"))
            for source in sources
        ):
            assert not ended.done(), f"the CLI ended before the backend had audio of {sources}"
            await asyncio.sleep(DEFAULT_FRAME_MS / 1000)  # a recording grows a frame at a time
    finally:
        ended.cancel()


def per_source(report: dict[str, object]) -> dict[str, dict[str, int]]:
    audio = report["audio"]
    assert isinstance(audio, dict)
    return audio


async def test_mic_and_system_are_two_streams_of_one_session(
    pulse: PulseServer, make_backend: BackendFactory, record_dir: Path, tmp_path: Path
) -> None:
    """The default input is a 1234 Hz sine (`mic`); the output plays 997 Hz (`system`)."""
    t = np.arange(6 * SAMPLE_RATE) / SAMPLE_RATE
    played = write_wav(tmp_path / "997.wav", to_int16(0.5 * np.sin(2 * np.pi * 997 * t)).tobytes())
    env = cli_env(tmp_path, {**pulse.env, "PULSE_SOURCE": "sine"})
    async with make_backend() as backend:
        ran = await listen_while_playing(
            pulse,
            played,
            env,
            record_dir,
            "--url",
            backend.url,
            "--duration",
            "3",
            "--events",
            "jsonl",
        )
    assert ran.code == 0, ran.err
    records = [json.loads(line) for line in ran.out.splitlines()]
    assert records[0]["sources"] == ["mic", "system"]
    report = records[-1]["report"]
    counts = per_source(report)
    session_id = report["session_id"]
    for source, hz in (("mic", 1234), ("system", 997)):
        pcm = recorded_pcm(record_dir, session_id, source)
        # each source's frames arrived as their own stream: all of them, in order, once
        assert len(pcm) == counts[source]["captured"] * 640 > 0
        assert counts[source]["acked"] == counts[source]["captured"]
        assert round(dominant_hz(pcm)) == hz


async def test_both_sources_reach_the_transcript_with_their_labels(
    pulse: PulseServer,
    make_backend: BackendFactory,
    record_dir: Path,
    speech_clip: Path,
    tmp_path: Path,
) -> None:
    """Both inputs hear the speech played into the sink (the default input is its monitor),
    so the backend transcribes it twice, once per source."""
    env = cli_env(tmp_path, pulse.env)
    seconds = f"{CLIP_SECONDS + 2:.0f}"  # the clip starts once both sources stream
    async with make_backend(asr="pocketsphinx") as backend:
        ran = await listen_while_playing(
            pulse,
            speech_clip,
            env,
            record_dir,
            "--url",
            backend.url,
            "--duration",
            seconds,
            "--transcript",
            str(tmp_path / "both"),
        )
    assert ran.code == 0, ran.err
    finals = [r for r in jsonl(tmp_path / "both.jsonl") if r["type"] == "final"]
    heard = {
        source: " ".join(r["text"] for r in finals if r["source"] == source)
        for source in ("mic", "system")
    }
    assert all("walk in the park" in text for text in heard.values()), heard
    markdown = (tmp_path / "both.md").read_text()
    assert "mic" in markdown and "system" in markdown
    assert " mic: " in ran.out and " system: " in ran.out  # labelled lines in the view
