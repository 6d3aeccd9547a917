"""K3: a big list over a slow link, from a scripted server on 127.0.0.1 (no control plane needed).

Four pages of 500 ConfigMaps (~1 MB each) are sent at ~1 MB/s, so each page takes about twice the request
deadline and the whole list eight times it. The list must complete (a page has an idle deadline, not a total
one), and while it runs the cluster says how far it got.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from core.live.cache import ClusterCache
from core.live.cluster import ClusterWatcher
from core.live.kube import KubeClient
from core.live.kubeconfig import ContextConfig
from core.model import ConnectionState
from core.settings import WatchSettings
from tests.cluster.test_live_transport import serve

__all__ = ["serve"]  # the fixture, used by name

PAGES = 4
PER_PAGE = 500
RATE = 1_000_000
"""Bytes per second."""
DEADLINE = 0.5
"""The request deadline of the test's settings (the default is 20 s)."""


def page(number: int) -> bytes:
    items = [{"metadata": {"name": f"cm-{number}-{i}", "namespace": "bulk", "resourceVersion": "7"},
              "data": {"blob": "x" * 1900}} for i in range(PER_PAGE)]
    token = "" if number == PAGES - 1 else f"page-{number + 1}"
    return json.dumps({"kind": "ConfigMapList", "items": items,
                       "metadata": {"resourceVersion": "7", "continue": token}}).encode()


async def test_a_slow_big_list_outlasts_the_request_deadline_and_shows_progress(
        serve: Callable[..., Awaitable[str]]) -> None:
    pages_served: list[float] = []

    async def configmaps(request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") == "true":
            await asyncio.sleep(30)
            return web.Response(status=200)
        token = request.query.get("continue", "")
        number = int(token.removeprefix("page-")) if token else 0
        body = page(number)
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        began = time.monotonic()
        step = RATE // 20
        for offset in range(0, len(body), step):
            await response.write(body[offset:offset + step])
            await asyncio.sleep(0.05)
        await response.write_eof()
        pages_served.append(time.monotonic() - began)
        return response

    async def version(request: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "36"})

    async def discovery(request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "configmaps", "namespaced": True, "kind": "ConfigMap", "verbs": ["list", "watch", "get"]}]})

    async def api_versions(request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"]})

    async def groups(request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroupList", "groups": []})

    url = await serve({"/api/v1/configmaps": configmaps, "/version": version, "/api/v1": discovery,
                       "/api": api_versions, "/apis": groups})
    settings = WatchSettings(request_timeout=DEADLINE, heartbeat_interval=0.2, heartbeat_timeout=1.0)
    api = KubeClient(cluster="local", context=ContextConfig(name="local", server=url), settings=settings)
    cache = ClusterCache("local")
    seen: list[tuple[ConnectionState, str, str]] = []

    def changed(_: object) -> None:
        status = cache.status()
        if not seen or seen[-1] != (status.connection, status.listing, status.message):
            seen.append((status.connection, status.listing, status.message))

    watcher = ClusterWatcher(api, cache, kinds=[("", "ConfigMap")], settings=settings, tick=0.05,
                             on_change=changed)
    began = time.monotonic()
    await watcher.start()
    try:
        await watcher.wait_until(lambda: cache.listed("", "ConfigMap"), timeout=60)
        took = time.monotonic() - began
    finally:
        await watcher.stop()
        await api.close()
    assert len(cache) == PAGES * PER_PAGE
    assert cache.state is ConnectionState.CONNECTED and cache.listing == ""
    assert all(seconds > DEADLINE for seconds in pages_served), pages_served  # every page outlasted it
    assert took > PAGES * DEADLINE * 1.5, took
    progress = [listing for _, listing, _ in seen if listing]
    assert progress == [f"listing ConfigMap: {n:,} objects so far" for n in (500, 1000, 1500)], seen
    assert all(state is ConnectionState.CONNECTING for state, listing, _ in seen if listing), seen
    assert not any(message for _, _, message in seen), seen  # never a failure on the way
    print(f"\nK3: {PAGES * PER_PAGE} objects ({PAGES} pages of ~1 MB at ~1 MB/s) listed in {took:.1f}s with a "
          f"{DEADLINE}s request deadline; pages took {', '.join(f'{s:.2f}' for s in pages_served)}s")
