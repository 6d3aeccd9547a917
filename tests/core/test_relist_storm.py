"""A 410 storm (row K7): every watched kind of a cluster loses its resourceVersion at once (etcd compacted
while the cluster was cut off). Each kind is relisted exactly once, and never more than
``LIST_CONCURRENCY`` lists run on the cluster at the same time; the objects are kept meanwhile. (The
watcher's own CustomResourceDefinition watch, used for discovery, is left out of the counts.)"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from core.live.api import JSON, APIResource
from core.live.cache import ClusterCache
from core.live.cluster import LIST_CONCURRENCY, ClusterWatcher
from core.model import ConnectionState, ResourceKey
from core.settings import WatchSettings
from core.simulated.simulated_cluster import SimulatedCluster, SimulationTiming

KINDS = 12


class CountingAPI:
    """Delegates to a simulated cluster; every list is slowed down and counted (in flight, peak, per kind)."""

    def __init__(self, inner: SimulatedCluster, list_latency: float) -> None:
        self._inner = inner
        self._latency = list_latency
        self.in_flight = 0
        self.peak = 0
        self.lists: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def list(self, resource: APIResource, **kwargs: Any) -> JSON:
        if kwargs.get("limit") == 1:  # a resume probe, not a list of the kind
            return await self._inner.list(resource, **kwargs)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self._latency)
            page = await self._inner.list(resource, **kwargs)
        finally:
            self.in_flight -= 1
        self.lists[resource.kind] = self.lists.get(resource.kind, 0) + 1
        return page


async def test_410_on_every_kind_relists_each_once_with_capped_concurrency() -> None:
    timing = dataclasses.replace(SimulationTiming.instant(), bookmark_interval=3600.0)
    sim = SimulatedCluster("c", timing=timing)
    served = [r for r in await sim.discover() if {"list", "watch"} <= r.verbs]
    kinds = [(r.group, r.kind) for r in served if r.kind != "CustomResourceDefinition"][:KINDS]
    assert len(kinds) == KINDS, [r.kind for r in served]
    sim.ensure_namespace("shop")
    sim.seed_apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept", "namespace": "shop"}})
    api = CountingAPI(sim, list_latency=0.05)
    cache = ClusterCache("c", unreachable_after=30.0)
    settings = WatchSettings(heartbeat_interval=0.05, heartbeat_timeout=0.2, backoff_initial=0.05, backoff_max=0.2)
    watcher = ClusterWatcher(api, cache, kinds=kinds, settings=settings, tick=0.05)  # type: ignore[arg-type]
    await watcher.start()
    try:
        await watcher.wait_until(lambda: cache.state is ConnectionState.CONNECTED, timeout=20)
        assert {k: api.lists.get(k) for _, k in kinds} == {k: 1 for _, k in kinds}
        assert api.peak <= LIST_CONCURRENCY
        api.peak = 0

        sim.set_reachable(False)  # every watch ends; meanwhile etcd moves on and is compacted
        sim.seed_apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new", "namespace": "shop"}})
        sim.compact()
        await asyncio.sleep(0.3)
        assert cache.get(ResourceKey("", "ConfigMap", "shop", "kept")) is not None, "objects kept while cut off"
        sim.set_reachable(True)

        loop = asyncio.get_running_loop()
        began = loop.time()
        await watcher.wait_until(lambda: all(api.lists.get(k, 0) >= 2 for _, k in kinds), timeout=20)
        await watcher.wait_until(lambda: cache.get(ResourceKey("", "ConfigMap", "shop", "new")) is not None,
                                 timeout=20)
        took = loop.time() - began
        await asyncio.sleep(0.5)  # nothing else relists afterwards
        assert {k: api.lists.get(k) for _, k in kinds} == {k: 2 for _, k in kinds}, api.lists
        assert api.peak == LIST_CONCURRENCY, "the storm ran lists in parallel, up to the cap and no further"
        assert cache.get(ResourceKey("", "ConfigMap", "shop", "kept")) is not None
        print(f"\nK7: {KINDS} kinds relisted after a 410 storm in {took:.2f}s, peak {api.peak} concurrent lists")
    finally:
        await watcher.stop()
        await sim.close()
