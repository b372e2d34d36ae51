"""What a resumed session sends its client again: the finals the client has not received.

A v0.3 client says on a resume how many finals of each source it has received on the
session (`finals_received` in `start`); finals go out in order, so it has the first that
many, and only the ones after them are sent again. A claim beyond what was sent gets
nothing extra. A client that does not say gets what the lost socket carried, to drop the
ones it already has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def finals_to_replay(
    finals: Mapping[str, Sequence[dict[str, Any]]],
    released: Mapping[str, int],
    received: Mapping[str, int],
) -> list[dict[str, Any]]:
    """Per source, the finals after the first `received[source]`, up to the first
    `released[source]` (the ones sent, or due on the next socket), each source in order."""
    return [
        final
        for source, kept in finals.items()
        for final in kept[received.get(source, 0) : released.get(source, 0)]
    ]
