"""`serve` on a port it cannot have (taken by another server, out of range, an address
this machine does not own) exits 4 with one line naming the address, not a traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from pipeline.cli.exit_codes import ExitCode
from tests.cli.conftest import run_cli


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another listener holds for the test's duration."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    yield holder.getsockname()[1]
    holder.close()


async def test_a_port_in_use_exits_4_naming_it(taken_port: int, env: dict[str, str]) -> None:
    ran = await run_cli("serve", "--asr", "none", "--port", str(taken_port), env=env)
    assert ran.code == ExitCode.BAD_CONFIG, ran.err
    [line] = ran.err.strip().splitlines()
    assert line.startswith(f"live-listener: cannot listen on 127.0.0.1 port {taken_port}: ")
    assert line.endswith("address already in use")


@pytest.mark.parametrize(
    "argv", [["--port", "99999"], ["--port", "-1"], ["--host", "192.0.2.1", "--no-auth"]]
)
async def test_an_address_it_cannot_listen_on_exits_4(argv: list[str], env: dict[str, str]) -> None:
    ran = await run_cli("serve", "--asr", "none", *argv, env=env)
    assert ran.code == ExitCode.BAD_CONFIG, ran.err
    [line] = ran.err.strip().splitlines()
    assert line.startswith("live-listener: cannot listen on ") and "Traceback" not in ran.err
