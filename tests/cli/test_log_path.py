"""`--log-json` naming a path that cannot be written is a configuration error (exit 4, one
line that names the path and the fix), caught before anything streams."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli.exit_codes import ExitCode
from tests.cli.conftest import run_cli


@pytest.mark.parametrize("command", [["listen", "--source", "tone"], ["demo", "--asr", "none"]])
async def test_an_unwritable_log_path_exits_4(
    command: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    for path in (tmp_path / "missing" / "log.jsonl", tmp_path):  # no such dir; a dir
        ran = await run_cli(*command, "--log-json", str(path), env=env)
        assert ran.code == ExitCode.BAD_CONFIG, ran.err
        [line] = ran.err.strip().splitlines()
        assert line.startswith(f"live-listener: cannot write the log {path} (")
        assert "--log-json" in line
    assert not list((tmp_path / "data").rglob("*.md"))  # nothing streamed, nothing saved
