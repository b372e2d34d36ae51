"""`listen --source mic --source system`: two live inputs of the PulseAudio null sink in
one session — each its own stream (own seq, own recording, own meter), both labelled in the
transcript."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np

from backend.recording import recorded_pcm
from pipeline.audio import SAMPLE_RATE, to_int16
from tests.audio.pulse import PulseServer
from tests.cli.conftest import CLIP_SECONDS, Ran, cli_env, jsonl, run_cli, write_wav
from tests.cli.test_devices import dominant_hz
from tests.conftest import BackendFactory


async def listen_while_playing(
    pulse: PulseServer, played: Path, env: dict[str, str], *args: str
) -> Ran:
    player = pulse.play(played)
    try:
        return await run_cli("listen", "--source", "mic", "--source", "system", *args, env=env)
    finally:
        player.kill()
        await asyncio.to_thread(player.wait)


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
            pulse, played, env, "--url", backend.url, "--duration", "3", "--events", "jsonl"
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
    speech_clip: Path,
    tmp_path: Path,
) -> None:
    """Both inputs hear the speech played into the sink (the default input is its monitor),
    so the backend transcribes it twice, once per source."""
    env = cli_env(tmp_path, pulse.env)
    seconds = f"{CLIP_SECONDS + 1:.0f}"
    async with make_backend(asr="pocketsphinx") as backend:
        ran = await listen_while_playing(
            pulse,
            speech_clip,
            env,
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
    # (capture starts a moment after playback: the first words may be missed by both)
    assert all("walk in the park" in text for text in heard.values()), heard
    markdown = (tmp_path / "both.md").read_text()
    assert "mic" in markdown and "system" in markdown
    assert " mic: " in ran.out and " system: " in ran.out  # labelled lines in the view
