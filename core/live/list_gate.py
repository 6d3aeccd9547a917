"""Caps on concurrent LIST requests: per cluster and fleet-wide (fault K7 in docs/reliability.md).

A 410 storm (etcd compacted while clusters were cut off, or an API server restarted) makes every watched
kind of every cluster relist at once. ``LIST_CONCURRENCY`` (4) per cluster keeps one API server from being
flooded, but 500 clusters × 4 would still be 2,000 lists decoding at once in this process, which has one
event loop and shares the interpreter with the console. ``FleetListLimit`` is one semaphore that every
cluster's ``ListGate`` also takes, so at most ``WatchSettings.fleet_list_concurrency`` lists run in the whole
process; the others wait their turn (in the order they asked).

A slot is taken per cluster first and fleet-wide second, so a cluster never holds fleet slots while it waits
for its own.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from core.aio import CountedSlots


class FleetListLimit(CountedSlots):
    """The fleet-wide cap: one per engine, shared by every cluster's ``ListGate`` (``in_flight``, ``peak``
    and ``waiting`` count the lists holding or waiting for a fleet slot).

    Args:
        limit: concurrent lists in the whole process.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(limit, what="fleet_list_concurrency")

    @property
    def limit(self) -> int:
        """Concurrent lists in the whole process."""
        return self.slots


class ListGate:
    """``async with gate:`` around one list: a slot of this cluster, then (if any) a fleet slot.

    Args:
        per_cluster: concurrent lists on this cluster.
        fleet: the fleet-wide cap shared by every cluster (None: per cluster only).
    """

    def __init__(self, per_cluster: int, fleet: FleetListLimit | None = None) -> None:
        self._local = asyncio.Semaphore(per_cluster)
        self.fleet = fleet

    async def __aenter__(self) -> None:
        await self._local.acquire()
        if self.fleet is not None:
            try:
                await self.fleet.acquire()
            except BaseException:
                self._local.release()
                raise

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self.fleet is not None:
            self.fleet.release()
        self._local.release()
