"""Every credential the test suite uses, in one place: the suite's log scan looks for each.

Tests that need a token take it from here, so that a leak anywhere in the suite — a log
line, a traceback, an access log — fails the run (see tests/log_capture.py).
"""

from __future__ import annotations

TOKEN = "ll-test-token-7Hq2vX9cWm"  # the backend's token in most tests
WRONG_TOKEN = "ll-wrong-token-P4m8Rz1kQa"  # a token the backend refuses
STALE_TOKEN = "ll-stale-token-Jw5nT0bYe3"  # a token that was right once
FRESH_TOKEN = "ll-fresh-token-Ds3gK6uEn8"  # what a token provider hands out

ALL_TOKENS: dict[str, str] = {
    "TOKEN": TOKEN,
    "WRONG_TOKEN": WRONG_TOKEN,
    "STALE_TOKEN": STALE_TOKEN,
    "FRESH_TOKEN": FRESH_TOKEN,
}
