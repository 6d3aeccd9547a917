"""Garbage-collector policy for a process holding large caches of live objects.

CPython's cyclic collector runs a young-generation pass every 700 net container allocations by default;
decoding a watch event allocates dozens of short-lived dicts and lists, so ingest used to trigger a pass
every few events. The engine raises the young-generation threshold once at start.

The live cache gives the collector little to scan: ``core.live.cache`` stores each object as JSON bytes
plus a projection, two tracked objects per cached object (its key and its entry) instead of ~40 dicts and
lists, so old-generation passes stay cheap and nothing is moved into the permanent generation
(``gc.freeze`` is not used: it would keep cycles alive for good and hide leaks).
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 100)
"""Young-generation collections every 50k allocations instead of 700."""


class GCPolicy:
    """Tune the collector at start."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled

    def start(self) -> None:
        """Raise the collector's thresholds (once per process)."""
        if self.enabled and gc.get_threshold()[0] < THRESHOLDS[0]:
            gc.set_threshold(*THRESHOLDS)
