"""`live-listener listen` for daily use: --version, --events jsonl parsed line by line,
--speed max, addresses checked before connecting, environment defaults, and no transcript
left behind by a run that never streamed."""

from __future__ import annotations

import json
from pathlib import Path

from backend.server import RunningBackend, free_port
from pipeline import __version__
from tests.asr.speech import words
from tests.cli.conftest import CLIP_SECONDS, jsonl, run_cli
from tests.conftest import BackendFactory


async def test_version(env: dict[str, str]) -> None:
    ran = await run_cli("--version", env=env)
    assert ran.code == 0 and ran.out.strip() == f"live-listener {__version__}"


async def test_events_jsonl_at_max_speed(
    make_backend: BackendFactory, speech_clip: Path, env: dict[str, str], tmp_path: Path
) -> None:
    async with make_backend(asr="pocketsphinx") as backend:
        ran = await run_cli(
            *("listen", "--url", backend.url, "--source", f"file:{speech_clip}"),
            *("--speed", "max", "--events", "jsonl", "--transcript", str(tmp_path / "t")),
            env=env,
        )
    assert ran.code == 0, ran.err
    records = [json.loads(line) for line in ran.out.splitlines()]  # every line is one object
    types = [r["type"] for r in records]
    assert types[0] == "started" and types[-1] == "end" and types.count("end") == 1
    assert records[0]["schema"] == 1 and records[0]["sources"] == ["system"]
    phases = [r["phase"] for r in records if r["type"] == "phase"]
    assert phases[0] == "connecting" and phases[-1] == "stopped"
    # `at` counts from the session's start, as documented (not the clock's epoch)
    times = [r["at"] for r in records if "at" in r]
    assert times[0] == 0.0 and times == sorted(times)
    assert times[-1] <= records[-1]["report"]["duration_s"] + 0.001
    finals = [r for r in records if r["type"] == "final"]
    assert words(finals[0]["text"])[:4] == ["the", "weather", "is", "nice"]
    assert all(r["source"] == "system" for r in finals)
    report = records[-1]["report"]
    frames = round(CLIP_SECONDS * 50)
    assert report["outcome"] == "completed" and report["frames_lost"] == 0
    assert report["audio"]["system"]["acked"] == frames
    # paced by the acks, not the clock: the whole clip (two sentences) was read before the
    # first sentence came back; in real time the first final arrives 6 s before the end
    finishing = next(
        i for i, r in enumerate(records) if r["type"] == "phase" and r["phase"] == "finalizing"
    )
    assert finishing < types.index("final")
    # the human view went to stderr, the transcript to its files
    assert "outcome      completed" in ran.err
    saved = [r for r in jsonl(tmp_path / "t.jsonl") if r["type"] == "final"]
    assert [r["text"] for r in saved] == [r["text"] for r in finals]


async def test_bad_addresses_exit_4_at_once_without_files(
    env: dict[str, str], tmp_path: Path
) -> None:
    for url, says in (
        ("not a url", "is not a host name or IP address"),
        ("127.0.0.1:99999", "a port is a number from 1 to 65535"),
        ("ftp://example.org", "unsupported URL scheme"),
    ):
        ran = await run_cli("listen", "--url", url, "--source", "tone", env=env)
        assert ran.code == 4, (url, ran.err)
        lines = ran.err.strip().splitlines()
        assert len(lines) == 1 and says in lines[0]
        assert "connecting" not in ran.out
    assert not (tmp_path / "data").exists()


async def test_a_run_that_never_streamed_leaves_no_transcript(
    env: dict[str, str], tmp_path: Path
) -> None:
    url = f"127.0.0.1:{free_port()}"
    ran = await run_cli(
        *("listen", "--url", url, "--source", "tone", "--max-attempts", "1", "--plain"), env=env
    )
    assert ran.code == 5, ran.err
    assert "hint: nothing answers at that address" in ran.out
    assert "saved        nothing (the session never streamed)" in ran.out
    assert list((tmp_path / "data").rglob("*.md")) == []
    assert list((tmp_path / "data").rglob("*.jsonl")) == []


async def test_main_options_come_from_the_environment(
    backend: RunningBackend, env: dict[str, str], tmp_path: Path
) -> None:
    ran = await run_cli(
        "listen",
        "--duration",
        "0.5",
        env={
            **env,
            "LIVE_LISTENER_URL": backend.url,
            "LIVE_LISTENER_SOURCE": "tone",
            "LIVE_LISTENER_TRANSCRIPT": str(tmp_path / "from-env"),
        },
    )
    assert ran.code == 0, ran.err
    assert f"backend      {backend.url}" in ran.out and "a 440 Hz test tone" in ran.out
    assert jsonl(tmp_path / "from-env.jsonl")[-1]["outcome"] == "completed"


async def test_two_sources_with_one_label_are_a_usage_error(env: dict[str, str]) -> None:
    ran = await run_cli("listen", "--source", "tone", "--source", "system", env=env)
    assert ran.code == 2
    assert "both stream as 'system'" in ran.err and "mic=" in ran.err
