"""`live-listener demo` as a subprocess: a short recording, a short outage, the report."""

from __future__ import annotations

import re
from pathlib import Path

from tests.asr.speech import speech_pcm, words
from tests.cli.conftest import jsonl, run_cli, write_wav


async def test_the_demo_reconnects_resumes_and_writes_the_transcript(
    speech_clip: Path, env: dict[str, str], tmp_path: Path
) -> None:
    transcript = tmp_path / "demo"
    ran = await run_cli(
        *("demo", "--file", str(speech_clip), "--outage", "1.5"),
        *("--transcript", str(transcript)),
        env=env,
    )
    assert ran.code == 0, ran.err
    out = ran.out
    assert "outage       at 4.4 s for 1.5 s" in out
    assert "-- outage: the network drops every connection for 1.5 s --" in out
    assert re.search(r"reconnecting: attempt 1 in \d+\.\d s", out)
    assert "streaming (protocol v0.3, resumed)" in out
    assert re.search(r"reconnects   1 \(resumed 1, session resets 0\), downtime \d", out)
    assert (
        "frames lost  0 (dropped 0, dropped by the backend 0, undelivered 0); unconfirmed 0" in out
    )
    lines = [line for line in out.splitlines() if re.match(r"\[\d\d:\d\d\.\d\] \w", line)]
    assert words(lines[0])[:4] == ["the", "weather", "is", "nice"]
    assert f"saved        {transcript}.md" in out
    finals = [r["text"] for r in jsonl(transcript.with_suffix(".jsonl")) if r["type"] == "final"]
    markdown = transcript.with_suffix(".md").read_text()
    assert finals and all(text in markdown for text in finals)
    assert "through a chaos proxy" in markdown


async def test_the_demo_without_an_outage_never_reconnects(
    env: dict[str, str], tmp_path: Path
) -> None:
    clip = write_wav(tmp_path / "short.wav", speech_pcm(2.0))
    ran = await run_cli(
        *("demo", "--file", str(clip), "--no-outage", "--asr", "none"),
        *("--transcript", str(tmp_path / "demo")),
        env=env,
    )
    assert ran.code == 0, ran.err
    assert "outage       none" in ran.out
    assert "reconnecting" not in ran.out
    assert "reconnects   0 (resumed 0, session resets 0), downtime 0.0 s" in ran.out


async def test_the_demo_refuses_a_file_that_is_not_audio(env: dict[str, str]) -> None:
    ran = await run_cli("demo", "--file", __file__, env=env)
    assert ran.code == 4
    assert "is not a PCM WAV file" in ran.err
