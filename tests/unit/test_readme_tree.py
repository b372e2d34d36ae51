"""The README's file table and docs/ARCHITECTURE.md name the files as they are in the tree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def file_table() -> list[tuple[str, str]]:
    """(first cell, second cell) of each row of the README's `| file | concept |` table."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index("| file | concept |") + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        first, second = line.strip("|").split("|", 1)
        rows.append((first, second))
    return rows


def named_paths(text: str) -> set[str]:
    return set(re.findall(r"`((?:pipeline|operators|sinks|backend|docs)/[\w/.]*)`", text))


def listed_modules() -> set[str]:
    """Every file the table names: by its path, or by its name in its package's row."""
    listed: set[str] = set()
    for first, second in file_table():
        for path in named_paths(first):
            listed.add(path)
            if path.endswith("/"):
                names = re.findall(r"`([\w]+\.py)`", second)
                listed.update(path + name for name in names)
    return listed


def test_every_file_the_docs_name_exists() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    text += (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    installed_only = {"pipeline/PROTOCOL.md"}  # docs/PROTOCOL.md, as the wheel installs it
    missing = sorted(
        path for path in named_paths(text) - installed_only if not (ROOT / path).exists()
    )
    assert not missing, f"named in the docs, not in the tree: {missing}"


def test_the_file_table_lists_every_module_of_the_client() -> None:
    modules = {
        path.relative_to(ROOT).as_posix()
        for package in ("pipeline", "operators", "sinks")
        for path in (ROOT / package).rglob("*.py")
        if path.name not in ("__init__.py", "__main__.py") or path.parent.name == "cli"
    }
    listed = listed_modules()
    unlisted = sorted(modules - listed)
    assert not unlisted, f"in the tree, not in the README's file table: {unlisted}"
