"""Where a session's files go: always inside the record dir, in a directory of its own.

A session id is chosen by the client, so it is hostile input. Its directory is a readable,
sanitised prefix of the id plus a digest of the whole id: `..`, `a/b`, an id of 200
characters or of any script all land inside the root, and two ids never share a
directory (`a/b` and `a_b` sanitise alike but digest apart). A second session that
carries an id already in use (see backend/store.py) takes an `instance` number, which
gives it yet another directory.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

PREFIX_CHARS = 40
DIGEST_CHARS = 16
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")  # no dot: no `.`, `..` or hidden names


def session_dir_name(session_id: str, instance: int = 0) -> str:
    digest = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()
    prefix = _UNSAFE.sub("_", session_id)[:PREFIX_CHARS] or "session"
    name = f"{prefix}-{digest[:DIGEST_CHARS]}"
    return name if instance == 0 else f"{name}-{instance}"


def session_dir(root: Path, session_id: str, instance: int = 0) -> Path:
    """`root/<prefix>-<digest>[-instance]`, checked to be a direct child of `root`."""
    path = root / session_dir_name(session_id, instance)
    if path.parent != root or path.name in ("", ".", ".."):
        raise ValueError("a session directory must be a direct child of the record dir")
    return path
