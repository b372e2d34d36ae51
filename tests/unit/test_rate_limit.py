"""The token bucket on a virtual clock: bursts, the sustained rate, and never more."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.rate_limit import TokenBucket


def test_a_full_bucket_lets_a_burst_through_then_spaces_takers_by_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=3)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.1)  # one token short: a tenth of a second
    assert bucket.take(0.0) == pytest.approx(0.2)  # debt adds up


def test_a_taker_that_waits_as_told_is_held_to_the_rate() -> None:
    bucket, now = TokenBucket(rate=100, burst=10), 0.0
    for _ in range(1010):
        now += bucket.take(now)
    assert now == pytest.approx(10.0)  # 1000 takes beyond the burst, at 100 a second


def test_idle_time_refills_up_to_the_burst_only() -> None:
    bucket = TokenBucket(rate=5, burst=2)
    bucket.take(0.0)
    bucket.take(0.0)
    assert bucket.available(60.0) == 2.0
    assert bucket.available(59.0) == 2.0  # time going backwards adds nothing


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        TokenBucket(rate=0, burst=1)
    with pytest.raises(ValueError, match="burst >= 1"):
        TokenBucket(rate=1, burst=0)


@given(
    rate=st.floats(min_value=0.5, max_value=1000),
    burst=st.integers(min_value=1, max_value=50),
    gaps=st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=200),
)
def test_never_more_free_takes_than_the_burst_plus_what_the_rate_refilled(
    rate: float, burst: int, gaps: list[float]
) -> None:
    bucket, now, free = TokenBucket(rate, burst), 0.0, 0
    for gap in gaps:
        now += gap
        free += bucket.take(now) == 0.0
    assert free <= burst + rate * now + 1e-6
