"""`listen --flow-window SECONDS` (or LIVE_LISTENER_FLOW_WINDOW) sets how much audio per
source may be sent but unconfirmed: the flag reaches the session's settings, a bad value
is a usage error that names the flag, and `--help` documents both."""

from __future__ import annotations

import pytest

from pipeline.cli import build_parser, listen_options
from pipeline.cli.listen import session_config
from tests.cli.conftest import run_cli


def _window_frames(argv: list[str]) -> int:
    return session_config(listen_options(build_parser().parse_args(argv))).window_frames


def test_the_flag_sets_the_sessions_window() -> None:
    assert _window_frames(["listen", "--source", "tone"]) == 500  # 10 s of 20 ms frames
    assert _window_frames(["listen", "--source", "tone", "--flow-window", "3"]) == 150


def test_the_environment_sets_it_and_the_flag_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVE_LISTENER_FLOW_WINDOW", "2")
    assert _window_frames(["listen", "--source", "tone"]) == 100
    assert _window_frames(["listen", "--source", "tone", "--flow-window", "4"]) == 200


async def test_a_bad_value_is_a_usage_error(env: dict[str, str]) -> None:
    for value in ("0", "-1", "soon"):
        ran = await run_cli("listen", "--source", "tone", "--flow-window", value, env=env)
        assert ran.code == 2, ran.err
        assert "--flow-window" in ran.err and "_positive" not in ran.err
    ran = await run_cli("listen", "--source", "tone", env={**env, "LIVE_LISTENER_FLOW_WINDOW": "x"})
    assert ran.code == 2 and "--flow-window" in ran.err


async def test_help_documents_the_flag_and_its_variable(env: dict[str, str]) -> None:
    ran = await run_cli("listen", "--help", env=env)
    assert ran.code == 0
    assert "--flow-window SECONDS" in ran.out and "(default 10)" in ran.out
    assert "LIVE_LISTENER_FLOW_WINDOW" in ran.out
