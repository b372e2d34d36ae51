"""`benchmarks/sessions.py` names the collector's runs inside each window: the oldest
generation's each timed once, the younger ones counted, and only while installed."""

from __future__ import annotations

import gc

from benchmarks.sessions import Collections


def test_full_collections_are_timed_and_young_ones_counted_while_installed() -> None:
    collections = Collections()
    gc.callbacks.append(collections)
    try:
        gc.collect(0)
        gc.collect(1)
        gc.collect()  # the oldest generation: a full collection
        gc.collect(2)
    finally:
        gc.callbacks.remove(collections)
    gc.collect()  # no longer installed
    assert len(collections.lengths_ms) == 2
    assert collections.young == 2
    assert all(length >= 0 for length in collections.lengths_ms)
