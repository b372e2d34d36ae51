"""Recognisers go where someone is listening.

Decoders are few (`asr_decoders`). A session whose socket is gone keeps its recognisers for
the resume window, and without a handover, sessions that vanish mid-stream would leave
every later session untranscribed. So when a live source finds the pool exhausted, the
oldest detached session gives one up: it first transcribes what it heard (its finals are
kept for its resume), then its recogniser is closed and the decoder goes to the live source,
which queues its audio meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Protocol

from loguru import logger

from backend.asr import Recognizer, RecognizerFactory
from backend.stream import SourceStream


class Donor(Protocol):
    session_id: str
    streams: dict[str, SourceStream]


def hand_over(
    donors: Iterable[Donor], recognizers: RecognizerFactory, adaptation: str | None = None
) -> asyncio.Task[Recognizer] | None:
    """A task resolving to a recogniser freed from the first donor that has one (None if
    no donor has), starting from `adaptation` if given; it raises RecognizerUnavailable if
    another source took it first."""
    for donor in donors:
        for stream in donor.streams.values():
            if stream.recognizing and not stream.surrendering:
                stream.surrendering = True
                taken = _take(donor, stream, recognizers, adaptation)
                return asyncio.get_running_loop().create_task(taken)
    return None


async def _take(
    donor: Donor, stream: SourceStream, recognizers: RecognizerFactory, adaptation: str | None
) -> Recognizer:
    await stream.surrender()
    logger.bind(session_id=donor.session_id).info(
        "a detached session gave its recogniser for {} to a live session", stream.source
    )
    return recognizers(adaptation)
