"""Identifiers of a user session, of one user start, and of one socket (PROTOCOL.md)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class SessionIds:
    """Kept across reconnects: the backend resumes by `session_id`, drops other `attempt_id`s."""

    session_id: str
    attempt_id: str

    @classmethod
    def new(cls) -> SessionIds:
        return cls(session_id=new_id(), attempt_id=new_id())
