"""The meters' fast paths against their plain definitions, over arbitrary inputs.

`power` has two paths (an int64 copy for a live window, an int64 `einsum` over the int16
samples for a long one); both must be exact against integer arithmetic, extremes
included. `reduce` copies the state's dict for counts and levels; over any event
sequence it must give what `dataclasses.replace` gives.
"""

from __future__ import annotations

from dataclasses import fields, replace
from types import MappingProxyType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from operators.level import LIVE_WINDOW, power
from pipeline.errors import FailureKind
from pipeline.outbox import SourceCounts
from pipeline.state import AppState, Level, reduce
from pipeline.status import (
    AudioCounts,
    AudioLevel,
    BackendDropped,
    BackendStatus,
    Connected,
    Connecting,
    Failed,
    Finalizing,
    Reconnecting,
    Started,
    StatusEvent,
    Stopped,
    Streaming,
    Transcribed,
)


def exact_power(samples: np.ndarray) -> tuple[float, float]:
    """(mean square, peak) in Python integers, rounded once at the end."""
    values = [int(x) for x in samples]
    if not values:
        return 0.0, 0.0
    return sum(x * x for x in values) / len(values), float(max(abs(x) for x in values))


@given(arrays(np.int16, st.integers(0, 3 * LIVE_WINDOW)))
@settings(max_examples=60, deadline=None)
def test_power_is_exact_on_both_paths(samples: np.ndarray) -> None:
    assert power(samples) == exact_power(samples)


@pytest.mark.parametrize("length", [1, LIVE_WINDOW, LIVE_WINDOW + 1, 1_000_003])
@pytest.mark.parametrize("pattern", ["all low", "all high", "alternating"])
def test_power_is_exact_at_the_extremes(length: int, pattern: str) -> None:
    low, high = np.iinfo(np.int16).min, np.iinfo(np.int16).max
    samples = {
        "all low": np.full(length, low, np.int16),
        "all high": np.full(length, high, np.int16),
        "alternating": np.resize(np.array([low, high], np.int16), length),
    }[pattern]
    assert power(samples) == exact_power(samples)


def test_power_is_exact_on_a_strided_view_past_the_live_window() -> None:
    stereo = np.resize(np.array([-32768, 7, 32767, -1], np.int16), 4 * LIVE_WINDOW)
    left = stereo[::2]  # every other sample: not contiguous
    assert power(left) == exact_power(left)


sources = st.sampled_from(["system", "mic", ""])
times = st.floats(0, 1e6, allow_nan=False)
counts = st.builds(
    SourceCounts,
    captured=st.integers(0, 10**6),
    sent=st.integers(0, 10**6),
    buffered=st.integers(0, 10**4),
    acked=st.integers(0, 10**6),
)
events: st.SearchStrategy[StatusEvent] = st.one_of(
    st.builds(AudioCounts, at=times, counts=st.dictionaries(sources, counts, max_size=3)),
    st.builds(
        AudioLevel,
        at=times,
        source=sources,
        rms_dbfs=st.floats(-120, 0),
        peak_dbfs=st.floats(-120, 0),
    ),
    st.builds(Started, at=times, session_id=st.just("s"), attempt_id=st.text(max_size=3)),
    st.builds(Connecting, at=times, connection_id=st.text(max_size=3)),
    st.builds(Connected, at=times, connection_id=st.text(max_size=3)),
    st.builds(
        Streaming,
        at=times,
        connection_id=st.text(max_size=3),
        protocol=st.sampled_from(["0.2", "0.3"]),
        resumed=st.sampled_from([None, True, False]),
    ),
    st.builds(
        Reconnecting, at=times, attempt=st.integers(1, 9), delay=st.floats(0, 5), cause=st.text()
    ),
    st.builds(BackendStatus, at=times, state=st.sampled_from(["ok", "warning"]), message=st.text()),
    st.builds(BackendDropped, at=times, source=sources, total=st.integers(0, 99)),
    st.builds(
        Transcribed, at=times, source=sources, text=st.text(max_size=8), partial=st.booleans()
    ),
    st.builds(Finalizing, at=times),
    st.builds(Stopped, at=times),
    st.builds(
        Failed, at=times, reason=st.text(max_size=8), kind=st.sampled_from(list(FailureKind))
    ),
)


def reduce_by_replace(state: AppState, event: StatusEvent) -> AppState:
    """`reduce` with counts and levels copied by `dataclasses.replace`, as they were."""
    if isinstance(event, AudioCounts):
        audio = MappingProxyType({**state.audio, **event.counts})
        return replace(state, audio=audio, updated_at=event.at)
    if isinstance(event, AudioLevel):
        levels = {**state.levels, event.source: Level(event.rms_dbfs, event.peak_dbfs)}
        return replace(state, levels=levels, updated_at=event.at)
    return reduce(state, event)


@given(st.lists(events, max_size=40))
@settings(max_examples=150, deadline=None)
def test_the_dict_copy_is_replace_over_any_event_sequence(sequence: list[StatusEvent]) -> None:
    fast = slow = AppState()
    for event in sequence:
        before, was = fast, dict(vars(fast))
        fast, slow = reduce(fast, event), reduce_by_replace(slow, event)
        assert type(fast) is AppState and fast is not before
        assert vars(before) == was  # the state copied from is left as it was
        for name in (f.name for f in fields(AppState)):
            assert getattr(fast, name) == getattr(slow, name), name
        assert fast == slow
