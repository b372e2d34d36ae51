"""`live-listener listen` as a subprocess against a real backend on a loopback port."""

from __future__ import annotations

import asyncio
import re
import signal
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from backend.app import create_app
from backend.config import BackendConfig
from backend.server import RunningBackend, free_port
from tests.asr.speech import SPEECH_WAV, words
from tests.cli.conftest import finish, jsonl, run_cli, start_cli, wait_for_finals
from tests.conftest import BackendFactory

TOKEN = "s3cret-listen-token"
# A stop that honours its timeout (1 s here, or a second Ctrl-C) ends in seconds; one that
# ignores it waits an hour. A minute sits between the two on any machine, however loaded.
IGNORED_TIMEOUT = 60.0


async def test_listen_streams_with_a_token_read_from_the_environment(
    make_backend: BackendFactory, speech_clip: Path, env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "log.jsonl"
    async with make_backend(token=TOKEN, asr="pocketsphinx") as backend:
        ran = await run_cli(
            *("listen", "--url", backend.url, "--token-env", "MY_TOKEN"),
            *("--source", f"file:{speech_clip}", "--transcript", str(tmp_path / "talk.md")),
            *("--log-json", str(log)),
            env={**env, "MY_TOKEN": TOKEN},
        )
    assert ran.code == 0, ran.err
    assert "streaming (protocol v0.3)" in ran.out
    finals = [r for r in jsonl(tmp_path / "talk.jsonl") if r["type"] == "final"]
    assert words(finals[0]["text"])[:4] == ["the", "weather", "is", "nice"]
    assert finals[0]["text"] in ran.out  # printed as it arrived
    markdown = (tmp_path / "talk.md").read_text()
    assert all(final["text"] in markdown for final in finals)
    report = jsonl(tmp_path / "talk.jsonl")[-1]
    assert report["type"] == "report" and report["outcome"] == "completed"
    assert report["frames_lost"] == 0 and report["final_summary"] is True
    assert f"saved        {tmp_path / 'talk.md'}" in ran.out
    logged = log.read_text()
    assert "Streaming" in logged  # the status events went to the JSON log
    for text in (ran.out, ran.err, logged, markdown):
        assert TOKEN not in text


async def test_a_default_transcript_lands_under_the_data_home(
    backend: RunningBackend, env: dict[str, str], tmp_path: Path
) -> None:
    ran = await run_cli(
        "listen", "--url", backend.url, "--source", "tone", "--duration", "0.5", env=env
    )
    assert ran.code == 0, ran.err
    saved = list((tmp_path / "data" / "live-listener" / "transcripts").glob("*.md"))
    assert len(saved) == 1 and str(saved[0]) in ran.out
    assert saved[0].with_suffix(".jsonl").exists()


async def test_a_wrong_token_exits_3_at_once(
    make_backend: BackendFactory, speech_clip: Path, env: dict[str, str]
) -> None:
    async with make_backend(token=TOKEN) as backend:
        ran = await run_cli(
            *("listen", "--url", backend.url, "--source", f"file:{speech_clip}"),
            env={**env, "LIVE_LISTENER_TOKEN": "not-the-token"},
        )
    assert ran.code == 3, ran.err
    assert "reconnecting" not in ran.out  # one attempt: a wrong token is never retried
    reason = ran.err.strip().splitlines()
    assert len(reason) == 1 and "unauthorized" in reason[0] and "--token-env" in reason[0]
    assert "not-the-token" not in ran.out + ran.err


async def test_an_unreachable_backend_gives_up_with_5(env: dict[str, str]) -> None:
    url = f"ws://127.0.0.1:{free_port()}"  # nobody listens there
    ran = await run_cli(
        *("listen", "--url", url, "--source", "tone", "--max-attempts", "2"), env=env
    )
    assert ran.code == 5, ran.err
    reason = ran.err.strip().splitlines()
    assert len(reason) == 1
    assert "gave up reconnecting after 2 attempts" in reason[0]
    assert "cannot connect" in reason[0] and "127.0.0.1" in reason[0]
    assert ran.out.count("reconnecting: attempt") == 2


async def test_ctrl_c_stops_cleanly_and_writes_the_transcript(
    make_backend: BackendFactory, env: dict[str, str], tmp_path: Path
) -> None:
    transcript = tmp_path / "talk"
    async with make_backend(asr="pocketsphinx") as backend:
        began = time.monotonic()
        process = await start_cli(
            *("listen", "--url", backend.url, "--source", f"file:{SPEECH_WAV}"),
            *("--transcript", str(transcript)),
            env=env,
        )
        await wait_for_finals(transcript.with_suffix(".jsonl"), 1)
        process.send_signal(signal.SIGINT)
        ran = await finish(process, began, 60)
    assert ran.code == 130, ran.err
    assert "stopping: delivering what is buffered" in ran.out
    records = jsonl(transcript.with_suffix(".jsonl"))
    report = records[-1]
    assert report["type"] == "report" and report["outcome"] == "stopped"
    assert report["final_summary"] is True  # stop was sent and the backend answered
    assert report["frames_lost"] == 0  # everything captured before Ctrl-C was delivered
    assert report["audio"]["system"]["captured"] < 47 * 50  # it did stop early
    markdown = transcript.with_suffix(".md").read_text()
    assert "## Summary" in markdown and "outcome      stopped" in markdown
    assert all(r["text"] in markdown for r in records if r["type"] == "final")


async def test_a_killed_process_keeps_every_final_it_had(
    make_backend: BackendFactory, env: dict[str, str], tmp_path: Path
) -> None:
    transcript = tmp_path / "talk"
    async with make_backend(asr="pocketsphinx") as backend:
        process = await start_cli(
            *("listen", "--url", backend.url, "--source", f"file:{SPEECH_WAV}"),
            *("--transcript", str(transcript)),
            env=env,
        )
        finals = await wait_for_finals(transcript.with_suffix(".jsonl"), 1)
        process.kill()
        await asyncio.wait_for(process.wait(), 10)
    markdown = transcript.with_suffix(".md").read_text()
    assert finals[0]["text"] and finals[0]["text"] in markdown
    assert "## Summary" not in markdown  # it really died before the end


async def test_bad_settings_exit_4_naming_the_fix(
    backend: RunningBackend, env: dict[str, str], tmp_path: Path
) -> None:
    url = backend.url
    missing = tmp_path / "nothing.wav"
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cases = [
        (["--url", url, "--token-env", "NO_SUCH_VAR", "--source", "tone"], "NO_SUCH_VAR"),
        (["--url", url, "--source", f"file:{missing}"], f"no such audio file: {missing}"),
        (["--url", url, "--source", f"file:{Path(__file__)}"], "is not a PCM WAV file"),
        (["--url", url + "?token=abc", "--source", "tone"], "--token-env"),
        (["--url", "ftp://example.org", "--source", "tone"], "unsupported URL scheme"),
        (["--url", url, "--source", "tone", "--transcript", f"{blocker}/t"], "cannot write"),
    ]
    for flags, reason in cases:
        ran = await run_cli("listen", *flags, env=env)
        assert ran.code == 4, (flags, ran.err)
        assert reason in ran.err and len(ran.err.strip().splitlines()) == 1


async def test_asking_for_a_token_needs_a_terminal(env: dict[str, str]) -> None:
    ran = await run_cli("listen", "--ask-token", "--source", "tone", env=env)
    assert ran.code == 2
    assert "--ask-token needs a terminal" in ran.err


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_a_stop_during_an_outage_waits_no_longer_than_the_stop_timeout(
    signum: int, code: int, env: dict[str, str], tmp_path: Path
) -> None:
    url = f"ws://127.0.0.1:{free_port()}"  # nobody listens: the session keeps retrying
    began = time.monotonic()
    process = await start_cli(
        *("listen", "--url", url, "--source", "tone", "--duration", "3600"),
        *("--stop-timeout", "1", "--transcript", str(tmp_path / "t")),
        env=env,
    )
    assert process.stdout is not None
    head = b""
    while b"reconnecting: attempt" not in head:
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        assert line, head.decode()
        head += line
    await asyncio.sleep(1.0)  # a second of tone captured (and buffered: nobody listens)
    signalled = time.monotonic()
    process.send_signal(signum)
    ran = await finish(process, began, 120)
    assert ran.code == code, ran.err
    # the stop timeout is 1 s and the alternatives an hour (the tone) or forever (the
    # outage): only a stop that ignores its timeout takes a minute, however busy the machine
    assert time.monotonic() - signalled < IGNORED_TIMEOUT
    # never streamed: no transcript files, but the report says what was not delivered
    assert not (tmp_path / "t.md").exists() and not (tmp_path / "t.jsonl").exists()
    assert "outcome      stopped" in ran.out
    captured = re.search(r"frames       captured (\d+), sent 0", ran.out)
    assert captured is not None and int(captured[1]) > 0
    assert f"undelivered {captured[1]})" in ran.out  # said, not lost


@asynccontextmanager
async def tls_backend(port: int) -> AsyncIterator[None]:
    """The embedded backend behind TLS with a certificate no system trusts."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    runner = web.AppRunner(create_app(BackendConfig()), shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    try:
        yield
    finally:
        await runner.cleanup()


async def test_an_untrusted_certificate_is_bad_config_unless_insecure(
    env: dict[str, str],
) -> None:
    port = free_port()
    listen = ("listen", "--url", f"wss://127.0.0.1:{port}", "--source", "tone")
    async with tls_backend(port):
        refused = await run_cli(*listen, "--duration", "0.5", env=env)
        allowed = await run_cli(*listen, "--duration", "0.5", "--insecure", env=env)
    assert refused.code == 4, refused.err
    assert "TLS certificate verification failed" in refused.err
    assert allowed.code == 0, allowed.err
    assert "certificate NOT verified (--insecure)" in allowed.out
    assert "streaming (protocol v0.3)" in allowed.out
    assert "reconnecting" not in allowed.out  # the backend's close after stop is a normal end


async def test_a_second_ctrl_c_stops_at_once(env: dict[str, str], tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{free_port()}"
    began = time.monotonic()
    process = await start_cli(
        *("listen", "--url", url, "--source", "tone", "--stop-timeout", "3600"),
        *("--transcript", str(tmp_path / "t")),
        env=env,
    )
    assert process.stdout is not None
    line = b""
    while b"reconnecting: attempt" not in line:
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        assert line
    process.send_signal(signal.SIGINT)
    while b"stopping: delivering what is buffered" not in line:
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        assert line
    signalled = time.monotonic()
    process.send_signal(signal.SIGINT)
    ran = await finish(process, began, 120)
    assert ran.code == 130, ran.err
    assert time.monotonic() - signalled < IGNORED_TIMEOUT  # not the hour-long stop timeout
    assert "stopping now" in ran.out
    assert "outcome      stopped" in ran.out
    assert not (tmp_path / "t.jsonl").exists()  # it never streamed: no transcript
