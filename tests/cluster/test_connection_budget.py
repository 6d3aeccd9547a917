"""K17's connection budget against a scripted server on 127.0.0.1: requests of several clusters share the
budget's slots exactly, connections are not kept alive, and a heartbeat queued for a slot is not a timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from core.live.api import APIResource
from core.live.connection_budget import ConnectionBudget
from core.live.kube import KubeClient
from core.live.kubeconfig import ContextConfig
from tests.cluster.test_live_transport import serve

__all__ = ["serve"]

CM = APIResource(group="", version="v1", kind="ConfigMap", plural="configmaps", namespaced=True)


async def test_requests_of_every_cluster_share_the_budget_exactly(serve: Callable[..., Awaitable[str]]) -> None:
    active = {"now": 0, "peak": 0}
    peers: set[tuple[str, int]] = set()

    async def get(request: web.Request) -> web.Response:
        active["now"] += 1
        active["peak"] = max(active["peak"], active["now"])
        peername = request.transport.get_extra_info("peername") if request.transport else None
        if peername:
            peers.add(tuple(peername[:2]))
        try:
            await asyncio.sleep(0.2)
        finally:
            active["now"] -= 1
        return web.json_response({"kind": "ConfigMap", "metadata": {"name": request.match_info.get("name", "x")}})

    async def version(request: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "36"})

    url = await serve({"/api/v1/namespaces/ns/configmaps/{name}": get, "/version": version})
    budget = ConnectionBudget(3)
    clients = [KubeClient(cluster=f"c{i}", context=ContextConfig(name=f"c{i}", server=url), connections=budget)
               for i in range(4)]
    try:
        await asyncio.gather(*(c.get(CM, f"cm{j}", "ns") for c in clients for j in range(3)))
        assert active["peak"] == 3 == budget.peak  # 12 requests of 4 clusters, never more than 3 open
        assert budget.queued > 0 and budget.in_flight == 0 and budget.waiting == 0
        assert len(peers) == 12  # one connection per request: none kept alive

        # Every slot is taken: a heartbeat waits for one, and its 0.1 s deadline starts only then.
        async def hold() -> None:
            async with budget:
                await asyncio.sleep(0.5)

        holders = [asyncio.create_task(hold()) for _ in range(3)]
        await asyncio.sleep(0.05)
        await clients[0].ping(0.1)  # no "no answer within 0.1s": it was queued, not hung
        await asyncio.gather(*holders)
    finally:
        for c in clients:
            await c.close()
