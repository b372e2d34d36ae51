"""`benchmarks/sessions.py` names the collector's full collections inside each window:
exactly the oldest generation's, each timed once, and only while installed."""

from __future__ import annotations

import gc

from benchmarks.sessions import FullCollections


def test_only_full_collections_are_counted_while_installed() -> None:
    collections = FullCollections()
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
    assert all(length >= 0 for length in collections.lengths_ms)
