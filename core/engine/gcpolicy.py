"""Garbage-collector policy for a process holding large caches of live objects.

CPython's cyclic collector runs a young-generation pass every 700 net container allocations by default;
decoding a watch event allocates dozens of short-lived dicts and lists, so ingest used to trigger a pass
every few events. The engine raises the young-generation threshold once at start, keeps the middle
generation small (its size bounds the longest pause) and full passes as far apart, in allocations, as
before (10,000 × 5 × 2,000 = 100 million, like 50,000 × 20 × 100). Measured by the sim-L cold start, 100
clusters × 100 apps × 10 objects (`uv run python -m bench.scale_bench [--gc-thresholds A,B,C]`, 2026-12-07,
`bench/RESULTS.md`): (50000, 20, 100) paused up to 478 ms of CPU (1,039 ms wall) in a middle pass and spent
5.0 s of CPU collecting; (10000, 5, 100) reached gen 2's threshold and paused 2.7 s of CPU in a full pass;
(10000, 5, 2000) paused up to 104 ms of CPU (328 ms wall) and spent 3.1 s. Watch ingest against
``orjson.loads`` went from 1.09× to 1.35× (target 1.5×): more young passes.

The live cache gives the collector little to scan: ``core.live.cache`` stores each object as JSON bytes
plus a projection, two tracked objects per cached object (its key and its entry) instead of ~40 dicts and
lists, so old-generation passes stay cheap and nothing is moved into the permanent generation
(``gc.freeze`` is not used: it would keep cycles alive for good and hide leaks).
"""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 5, 2_000)
"""Young passes every 10k allocations instead of 700; a middle pass every 5 of them (at most ~50k survivors
to scan); a full pass at most every 2,000 middle passes (and, by CPython's own rule, only when the old
generation grew by a quarter)."""


class GCPolicy:
    """Tune the collector at start."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled

    def start(self) -> None:
        """Raise the collector's thresholds (once per process)."""
        if self.enabled and gc.get_threshold()[0] < THRESHOLDS[0]:
            gc.set_threshold(*THRESHOLDS)
