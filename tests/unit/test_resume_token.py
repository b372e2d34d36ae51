"""The resume secret on the wire: decoded as a Secret (masked wherever it is shown), sent
back on every reconnection's `start`."""

from __future__ import annotations

import json

from pipeline.protocol import Start, Status, decode_event, encode_start
from pipeline.redaction import MASK, Secret, redact

SECRET = "rs-Zq8vN3kLw0pXy7Tb2mHc5JdRf9Gs4Ae1Ku6Yo"


def test_the_resume_token_is_decoded_as_a_secret_and_sent_back() -> None:
    event = decode_event(
        json.dumps(
            {"type": "status", "state": "streaming", "resumed": False, "resume_token": SECRET}
        )
    )
    assert isinstance(event, Status) and event.resume_token == Secret(SECRET)
    assert SECRET not in repr(event) and redact(f"got {SECRET}") == f"got {MASK}"
    start = Start(session_id="s", attempt_id="a", connection_id="c", resume_token=Secret(SECRET))
    assert json.loads(encode_start(start))["resume_token"] == SECRET
    assert "resume_token" not in json.loads(
        encode_start(Start(session_id="s", attempt_id="a", connection_id="c"))
    )
    for absent in ({}, {"resume_token": ""}, {"resume_token": 7}):
        decoded = decode_event(json.dumps({"type": "status", "state": "streaming", **absent}))
        assert getattr(decoded, "resume_token", None) is None
