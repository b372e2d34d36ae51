"""Secrets that cannot leak: a token shows as a mask in reprs, logs and exceptions."""

from __future__ import annotations

import re
import threading

MASK = "********"
# Scrubbing a value this short out of arbitrary text would mangle the text, not protect it.
MIN_SCRUB_LENGTH = 4

_known: set[str] = set()
_lock = threading.Lock()
# Credentials that may appear in text even when nobody wrapped them in a Secret.
_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"),
    re.compile(r"(?i)(x-echopanel-token[\"']?\s*[:=]\s*[\"']?)[^\s\"',;]+"),
    re.compile(r"(?i)([?&]token=)[^&\s\"']+"),
)


class Secret:
    """A credential. Only :meth:`reveal` gives the value; everything else shows a mask.

    Every Secret registers its value so that :func:`redact` can scrub it from any text,
    wherever it turns up (a log message, an exception from a library, a URL).
    `scrub=False` skips that, for a value only passed through to the wire (a backend hands
    out one resume secret per session: registering each would grow without bound).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str, *, scrub: bool = True) -> None:
        if not value:
            raise ValueError("a secret cannot be empty")
        self._value = value
        if scrub and len(value) >= MIN_SCRUB_LENGTH:
            with _lock:
                _known.add(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> str:
        raise TypeError("a Secret cannot be pickled")


def redact(text: str) -> str:
    """Replace every registered secret and every bearer-like credential with a mask."""
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text
