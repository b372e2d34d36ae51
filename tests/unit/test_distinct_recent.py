"""The bounded memory of keys already seen, and the operator that drops repeats (marbles)."""

from __future__ import annotations

import pytest
import reactivex

from operators.distinct_recent import RecentKeys, distinct_recent
from tests.unit.vtime import marbles


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


def test_the_docstring_diagram() -> None:
    def lower(value: str) -> str | None:
        return None if value == "x" else value.lower()

    dropped: list[str] = []
    with marbles() as m:
        source = m.cold("-a-b-A-x-a-|")
        expected = m.exp("-a-b---x---|")
        out = m.start(source.pipe(distinct_recent(lower, on_duplicate=dropped.append)))
        assert out == expected
    assert dropped == ["A", "a"]


def test_the_operator_forgets_beyond_its_limit_and_each_subscriber_remembers_alone() -> None:
    with marbles() as m:
        source = m.cold("a-b-c-a-c-|")
        assert m.start(source.pipe(distinct_recent(str, limit=2))) == m.exp("a-b-c-a---|")
    seen: list[str] = []
    shared = reactivex.of("a", "b", "a").pipe(distinct_recent(str))
    shared.subscribe(seen.append)
    shared.subscribe(seen.append)
    assert seen == ["a", "b", "a", "b"]
    with pytest.raises(ValueError, match="at least one"):
        distinct_recent(str, limit=0)


def test_a_memory_given_is_the_one_used_even_while_empty() -> None:
    memory = RecentKeys(limit=2)
    seen: list[str] = []
    reactivex.of("a", "a", "b", "c").pipe(distinct_recent(str, memory=memory)).subscribe(
        seen.append
    )
    assert seen == ["a", "b", "c"] and len(memory) == 2
