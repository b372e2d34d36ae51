"""`FailureKind` is the one classification of a failed session: the report prints it, the
exit code is chosen by it, and the README's two tables list exactly its values."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.cli.exit_codes import _BY_FAILURE, ExitCode
from pipeline.errors import FailureKind

README = Path(__file__).resolve().parents[2] / "README.md"


def table(header: str) -> list[list[str]]:
    """The cells of the README's table whose header row starts with `header`."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def quoted(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_the_readme_lists_every_failure_kind_and_what_it_raises() -> None:
    kinds = table("| `report.failure_kind` |")
    assert sorted(quoted(row[0])[0] for row in kinds) == sorted(FailureKind)


def test_the_readme_exit_codes_are_those_the_command_chooses() -> None:
    codes = table("| code | `failure_kind` |")
    assert {int(row[0]) for row in codes} == set(ExitCode) - {ExitCode.TERMINATED}
    assert "143 for SIGTERM" in codes[-1][2]
    listed = {kind: int(row[0]) for row in codes for kind in quoted(row[1])}
    assert listed == {kind.value: _BY_FAILURE[kind] for kind in FailureKind}
    assert set(_BY_FAILURE) == set(FailureKind)
