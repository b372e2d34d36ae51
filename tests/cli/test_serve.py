"""`serve` fails closed and says what it does: misconfigured authentication in every form is
a refusal to start, no option is taken by abbreviation, every option is explained, and a
running server shuts down gracefully on SIGTERM with clients attached."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
from pathlib import Path

import pytest
from aiohttp import ClientSession

from backend.config import BackendConfig
from backend.server import free_port
from pipeline.cli import build_parser, main
from pipeline.cli.exit_codes import ExitCode
from tests.cli.conftest import start_cli
from tests.integration.fuzzing import valid_start
from tests.security.test_ownership import messages_until
from tests.tokens import TOKEN

RUNNER_SHUTDOWN = 1.0  # aiohttp's wait for handlers after the app's shutdown (backend/server.py)


@pytest.mark.parametrize(
    ("argv", "env", "code", "named"),
    [
        (["--token-env", "LL_SERVE_TOKEN"], {}, ExitCode.BAD_CONFIG, "LL_SERVE_TOKEN"),
        (
            ["--token-env", "LL_SERVE_TOKEN"],
            {"LL_SERVE_TOKEN": ""},
            ExitCode.BAD_CONFIG,
            "LL_SERVE_TOKEN",
        ),
        (
            ["--token-env", "LL_SERVE_TOKEN"],
            {"LL_SERVE_TOKEN": "  "},
            ExitCode.BAD_CONFIG,
            "LL_SERVE_TOKEN",
        ),
        (["--host", "0.0.0.0"], {}, ExitCode.BAD_CONFIG, "--no-auth"),
        (["--host", "192.0.2.1"], {}, ExitCode.BAD_CONFIG, "--no-auth"),
        (
            ["--token-env", "LL_SERVE_TOKEN", "--no-auth"],
            {"LL_SERVE_TOKEN": TOKEN},
            ExitCode.USAGE,
            "--no-auth",
        ),
    ],
)
def test_misconfigured_authentication_refuses_to_start(
    argv: list[str],
    env: dict[str, str],
    code: ExitCode,
    named: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("LL_SERVE_TOKEN", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", "--asr", "none", *argv]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err and TOKEN not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--token", TOKEN],
        ["serve", f"--token={TOKEN}"],
        ["serve", "--tok", TOKEN],
        ["serve", "--token-e", "LL_SERVE_TOKEN"],
        ["serve", "--no-a", "--host", "0.0.0.0"],
        ["listen", "--tok", TOKEN],
        ["listen", "--token", TOKEN],
    ],
)
def test_no_secret_on_the_command_line_and_no_abbreviations(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == ExitCode.USAGE
    assert TOKEN not in capsys.readouterr().err


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _parsers(sub)
    return found


def test_no_parser_takes_abbreviations() -> None:
    parsers = _parsers(build_parser())
    assert len(parsers) == 5 and all(not p.allow_abbrev for p in parsers)


def test_every_serve_option_has_a_sentence_and_its_default() -> None:
    (serve,) = [p for p in _parsers(build_parser()) if p.prog.endswith(" serve")]
    options = [
        a
        for a in serve._actions
        if a.option_strings and a.help != argparse.SUPPRESS and a.dest != "help"
    ]
    assert len(options) >= 20
    undocumented = [a.option_strings[0] for a in options if "default" not in (a.help or "")]
    assert undocumented == []


async def test_serve_says_what_it_does_and_shuts_down_gracefully(
    tmp_path: Path, env: dict[str, str]
) -> None:
    grace = 0.5
    port = free_port()
    process = await start_cli(
        "serve", "--asr", "none", "--host", "0.0.0.0", "--no-auth", "--port", str(port),
        "--record-dir", str(tmp_path / "rec"), "--shutdown-grace", str(grace), env=env,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    banner = [(await process.stdout.readline()).decode() for _ in range(7)]
    text = "".join(banner)
    assert f"ws://0.0.0.0:{port}/ws/live-listener" in text
    assert "no authentication (--no-auth)" in text and str(tmp_path / "rec") in text
    assert f"start within {BackendConfig.start_timeout:g} s" in text
    url = f"ws://127.0.0.1:{port}/ws/live-listener"
    async with ClientSession() as http:
        streaming = await http.ws_connect(url)
        await streaming.send_str(valid_start("attached"))
        await messages_until(streaming, "streaming")
        frame = base64.b64encode(bytes(640)).decode()
        for seq in range(50):
            await streaming.send_str(json.dumps({"type": "audio", "data": frame, "seq": seq}))
        await messages_until(streaming, "ack")
        idle = await http.ws_connect(url)
        await messages_until(idle, "connected")
        loop = asyncio.get_running_loop()  # clients read all along, as real ones do
        readers = [
            loop.create_task(messages_until(ws, "final_summary")) for ws in (streaming, idle)
        ]
        process.send_signal(signal.SIGTERM)
        # the whole shutdown: drain (grace), flush (grace), aiohttp's own wait, a margin
        bound = 2 * grace + RUNNER_SHUTDOWN + 3.0
        code = await asyncio.wait_for(process.wait(), bound)
        replies, idle_replies = await asyncio.gather(*readers)
        assert [r["type"] for r in replies if r["type"] == "final_summary"] == []
        assert idle_replies == []
        assert (streaming.close_code, idle.close_code) == (1012, 1012)
    err = (await process.stderr.read()).decode()
    assert code == ExitCode.OK, err
    assert "session attached started" in err and "session attached" in err
    assert "shutting down" in err and "stopped" in err
