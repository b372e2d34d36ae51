"""Drop a value whose key was seen recently: how the session drops replayed finals.

A resume replays the finals sent on the lost socket — recent ones — so remembering the
last `limit` keys is enough; a backend that floods distinct values cannot grow it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops

DEFAULT_LIMIT = 1024
T = TypeVar("T")


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


def distinct_recent(
    key: Callable[[T], Hashable | None],
    limit: int = DEFAULT_LIMIT,
    on_duplicate: Callable[[T], None] | None = None,
    memory: RecentKeys | None = None,
) -> Callable[[Observable[T]], Observable[T]]:
    """Values whose key is not among the last `limit` keys seen; a key of None always passes.

    .. marble::
        :alt: distinct_recent

        -a-b-A-x-a-|
        [ distinct_recent(key=lower) ]
        -a-b-----x-|

    (`x` has no key; `A` and `a` repeat the key of `a`.) `on_duplicate` is told of each
    value dropped. Each subscription remembers its own keys, unless `memory` is given
    (then shared, and open to inspection). Unlike `distinct`, memory is bounded; unlike
    `distinct_until_changed`, a repeat need not follow at once.
    """
    if limit < 1:
        raise ValueError("remember at least one key")

    def operator(source: Observable[T]) -> Observable[T]:
        def fresh(recent: RecentKeys) -> Observable[T]:
            def keep(value: T) -> bool:
                k = key(value)
                if k is None or not recent.seen(k):
                    return True
                if on_duplicate is not None:
                    on_duplicate(value)
                return False

            return source.pipe(ops.filter(keep))

        def per_subscription(_: abc.SchedulerBase | None) -> Observable[T]:
            return fresh(memory if memory is not None else RecentKeys(limit))

        return reactivex.defer(per_subscription)

    return operator
