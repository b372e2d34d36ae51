"""The bounded memory of finals already seen."""

from __future__ import annotations

import pytest

from pipeline.recent import RecentKeys


def test_a_key_seen_again_is_a_duplicate() -> None:
    recent = RecentKeys(limit=3)
    assert [recent.seen(k) for k in ("a", "b", "a")] == [False, False, True]


def test_memory_is_bounded_by_count_and_forgets_the_oldest() -> None:
    recent = RecentKeys(limit=3)
    for n in range(1000):
        recent.seen(n)
    assert len(recent) == 3
    assert recent.seen(999) and recent.seen(997)
    assert not recent.seen(0)  # long forgotten: seen as new


def test_a_repeat_keeps_a_key_fresh() -> None:
    recent = RecentKeys(limit=2)
    recent.seen("a")
    recent.seen("b")
    recent.seen("a")  # refreshed
    recent.seen("c")  # forgets b, the oldest
    assert recent.seen("a") and not recent.seen("b")


def test_the_limit_is_positive() -> None:
    with pytest.raises(ValueError, match="at least one"):
        RecentKeys(limit=0)
