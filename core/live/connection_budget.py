"""A connection budget for a fleet whose open-file limit is too low (fault K17 in docs/reliability.md).

Every request to a cluster needs a socket, and aiohttp has no HTTP/2 to share one. When even the hard
open-file limit is below what the fleet needs (``core.limits.open_file_shortfall``), the engine gives every
cluster's ``KubeClient`` one shared ``ConnectionBudget``: a request (a list page, a get, a dry run, a
heartbeat, a whole watch stream) holds one of its slots while its connection is open, connections are not
kept alive afterwards, and what does not fit waits its turn. Clusters are then queued (slower) instead of
failing one by one with "Too many open files".

A heartbeat waits for its slot before its deadline starts: a queued cluster is not a hung one.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class ConnectionBudget:
    """At most ``slots`` open connections to clusters in the whole process.

    Args:
        slots: connections at once (at least 1).
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"a connection budget needs at least one slot, not {slots}")
        self.slots = slots
        self._semaphore = asyncio.Semaphore(slots)
        self.in_flight = 0
        """Connections open now."""
        self.peak = 0
        """The most connections open at once (for tests and metrics)."""
        self.waiting = 0
        """Requests waiting for a slot now."""
        self.queued = 0
        """Requests that had to wait for a slot, in all."""

    async def __aenter__(self) -> None:
        if self._semaphore.locked():
            self.queued += 1
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.in_flight -= 1
        self._semaphore.release()
