"""A bounded memory of recently seen keys: what the session keeps to drop duplicate finals.

A resume replays the finals sent on the lost socket — recent ones — so remembering the
last `limit` keys is enough; a backend that floods distinct finals cannot grow it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

DEFAULT_LIMIT = 1024


class RecentKeys:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 1:
            raise ValueError("remember at least one key")
        self.limit = limit
        self._keys: OrderedDict[Hashable, None] = OrderedDict()

    def seen(self, key: Hashable) -> bool:
        """True if `key` is among the recent ones; else remember it (forgetting the oldest)."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return True
        self._keys[key] = None
        if len(self._keys) > self.limit:
            self._keys.popitem(last=False)
        return False

    def __len__(self) -> int:
        return len(self._keys)
