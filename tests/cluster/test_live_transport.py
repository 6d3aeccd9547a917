"""KubeClient's transport against a small scripted HTTP server on 127.0.0.1 (no control plane needed):
401 → credentials re-run once, a stalled watch trips the socket read timeout, malformed watch lines,
Status messages, and legacy discovery with a broken aggregated group (K12)."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from core.errors import ClusterError
from core.live.api import APIResource
from core.live.kube import KubeClient
from core.live.kubeconfig import ContextConfig, ExecConfig
from core.live.watch_events import MALFORMED_EVENT
from core.settings import WatchSettings

CM = APIResource(group="", version="v1", kind="ConfigMap", plural="configmaps", namespaced=True)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TOKEN_PLUGIN = textwrap.dedent('''
    import json, os
    path = os.environ["COUNT"]
    with open(path, "a") as f:
        f.write("x")
    n = len(open(path).read())
    print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                      "status": {"token": "tok-%d" % n}}))
''')


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Callable[[dict[str, Handler]], Awaitable[str]]]:
    """``await serve({path: handler})`` → base URL of a server on 127.0.0.1 (stopped afterwards)."""
    runners: list[web.AppRunner] = []

    async def start(routes: dict[str, Handler]) -> str:
        app = web.Application()
        for path, handler in routes.items():
            app.router.add_route("*", path, handler)
        runner = web.AppRunner(app, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


def client(url: str, **kwargs: object) -> KubeClient:
    return KubeClient(cluster="local", context=ContextConfig(name="local", server=url, **kwargs))  # type: ignore[arg-type]


def status(code: int, message: str, reason: str = "") -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                              "reason": reason, "code": code}, status=code)


async def test_401_reruns_the_exec_plugin_once(serve: Callable[..., Awaitable[str]], tmp_path: Path) -> None:
    """The first token is rejected; the plugin runs again and the request is retried once, successfully."""
    seen: list[str] = []

    async def get(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != "Bearer tok-2":
            return status(401, "Unauthorized", "Unauthorized")
        return web.json_response({"kind": "ConfigMap", "metadata": {"name": "x"}})

    url = await serve({"/api/v1/namespaces/ns/configmaps/x": get})
    script = tmp_path / "plugin.py"
    script.write_text(TOKEN_PLUGIN)
    api = client(url, exec=ExecConfig(command=sys.executable, args=(str(script),),
                                      env=(("COUNT", str(tmp_path / "count")),)))
    try:
        assert (await api.get(CM, "x", "ns")) == {"kind": "ConfigMap", "metadata": {"name": "x"}}
        assert seen == ["Bearer tok-1", "Bearer tok-2"]
        assert api.credentials.exec_runs == 2 and api.counters["retried_401"] == 1
    finally:
        await api.close()


async def test_persistent_401_is_reported_after_one_retry(serve: Callable[..., Awaitable[str]], tmp_path: Path) -> None:
    """Credentials that stay rejected give one clear 401 error for this cluster, after exactly one retry."""
    calls: list[int] = []

    async def get(request: web.Request) -> web.Response:
        calls.append(1)
        return status(401, "Unauthorized", "Unauthorized")

    url = await serve({"/api/v1/namespaces/ns/configmaps/x": get})
    script = tmp_path / "plugin.py"
    script.write_text(TOKEN_PLUGIN)
    api = client(url, exec=ExecConfig(command=sys.executable, args=(str(script),),
                                      env=(("COUNT", str(tmp_path / "count")),)))
    try:
        with pytest.raises(ClusterError) as caught:
            await api.get(CM, "x", "ns")
        assert caught.value.unauthorized and "cluster local" in str(caught.value)
        assert len(calls) == 2
    finally:
        await api.close()


async def test_a_stalled_watch_trips_the_socket_read_timeout(serve: Callable[..., Awaitable[str]]) -> None:
    """Headers and one event, then silence: the watch fails (status None) after read_timeout, not 300 s."""

    async def watch(request: web.Request) -> web.StreamResponse:
        assert request.query["watch"] == "true" and request.query["allowWatchBookmarks"] == "true"
        assert request.query["timeoutSeconds"] == "290"
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b'{"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"2"}}}\n')
        await asyncio.sleep(30)
        return resp

    url = await serve({"/api/v1/configmaps": watch})
    api = KubeClient(cluster="local", context=ContextConfig(name="local", server=url),
                     settings=WatchSettings(read_timeout=1.0))
    events = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(ClusterError) as caught:
            async for event in api.watch(CM, resource_version="1", timeout_seconds=290):
                events.append(event)
        assert caught.value.status is None and caught.value.transient
        assert len(events) == 1 and loop.time() - started < 10
    finally:
        await api.close()


async def test_malformed_watch_line_is_dropped_and_counted(serve: Callable[..., Awaitable[str]]) -> None:
    """A half-written JSON line ends the watch with reason MalformedEvent (the reflector relists, K11)."""

    async def watch(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n{"type":"MODIFIED","obj\n')
        return resp

    url = await serve({"/api/v1/configmaps": watch})
    api = client(url)
    try:
        with pytest.raises(ClusterError) as caught:
            async for _ in api.watch(CM, resource_version="1", timeout_seconds=5):
                pass
        assert caught.value.reason == MALFORMED_EVENT
        assert api.counters["malformed_events"] == 1
    finally:
        await api.close()


@pytest.mark.parametrize("bad", [
    pytest.param(b'{"type":"ADDED","object":{"metadata":{"name":"caf\xe9"}}}\n', id="invalid-utf8"),
    pytest.param(b'[1, 2]\n', id="not-an-object"),
    pytest.param(b'{"type":"ADDED","object":"x"}\n', id="object-not-a-mapping"),
    pytest.param(b'{"type":"ADDED","object":{"metadata":{"name":"a\x00"}}\x00}\n', id="nul-byte"),
])
async def test_undecodable_watch_lines_are_dropped_counted_and_end_the_watch(
        serve: Callable[..., Awaitable[str]], bad: bytes) -> None:
    """K11: invalid UTF-8, a JSON value that is not an event, a NUL byte: after the good event the watch
    ends with reason MalformedEvent (so the caller relists the kind), counted once, no other exception."""

    async def watch(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n' + bad)
        return resp

    api = client(await serve({"/api/v1/configmaps": watch}))
    seen: list[object] = []
    try:
        with pytest.raises(ClusterError) as caught:
            async for event in api.watch(CM, resource_version="1", timeout_seconds=5):
                seen.append(event)
        assert caught.value.reason == MALFORMED_EVENT and caught.value.status is None
        assert api.counters["malformed_events"] == 1
        assert len(seen) == 1
    finally:
        await api.close()


async def test_status_message_and_reason_are_kept(serve: Callable[..., Awaitable[str]]) -> None:
    """A non-2xx answer becomes ClusterError with the Status's message, reason and code."""

    async def forbidden(request: web.Request) -> web.Response:
        return status(403, 'configmaps is forbidden: User "bob" cannot list resource', "Forbidden")

    api = client(await serve({"/api/v1/configmaps": forbidden}))
    try:
        with pytest.raises(ClusterError) as caught:
            await api.list(CM)
        error = caught.value
        assert (error.status, error.reason, error.forbidden) == (403, "Forbidden", True)
        assert 'User "bob" cannot list' in error.message and not error.transient
    finally:
        await api.close()


async def test_legacy_discovery_skips_a_broken_group(serve: Callable[..., Awaitable[str]]) -> None:
    """Without aggregated discovery, groups are read one by one; a 503 group is skipped with a warning."""

    async def api_root(request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"]})

    async def core_v1(request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "configmaps", "kind": "ConfigMap", "namespaced": True, "verbs": ["list", "watch"]},
            {"name": "pods/log", "kind": "Pod", "namespaced": True, "verbs": ["get"]}]})

    async def apis(request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroupList", "groups": [
            {"name": "apps", "versions": [{"version": "v1"}], "preferredVersion": {"version": "v1"}},
            {"name": "metrics.k8s.io", "versions": [{"version": "v1beta1"}],
             "preferredVersion": {"version": "v1beta1"}}]})

    async def apps_v1(request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIResourceList", "resources": [
            {"name": "deployments", "kind": "Deployment", "namespaced": True, "verbs": ["list", "watch"]}]})

    async def metrics(request: web.Request) -> web.Response:
        return status(503, "the server is currently unable to handle the request", "ServiceUnavailable")

    url = await serve({"/api": api_root, "/api/v1": core_v1, "/apis": apis, "/apis/apps/v1": apps_v1,
                       "/apis/metrics.k8s.io/v1beta1": metrics})
    api = client(url)
    try:
        found = await api.discover()
        assert {(r.group, r.kind) for r in found} == {("", "ConfigMap"), ("apps", "Deployment")}
        assert len(api.discovery_warnings) == 1 and "metrics.k8s.io" in api.discovery_warnings[0]
    finally:
        await api.close()


async def test_refused_connection_is_transient() -> None:
    """Nothing listening: ClusterError with status None, naming the cluster."""
    api = client("http://127.0.0.1:1")
    try:
        with pytest.raises(ClusterError) as caught:
            await api.list(CM)
        assert caught.value.status is None and caught.value.transient
    finally:
        await api.close()


async def test_cluster_unreachable_at_start_is_reported_quickly() -> None:
    """K1: a watcher on a cluster that refuses connections shows Unreachable within seconds, and keeps
    retrying in the background (stop() ends it cleanly)."""
    from core.live.cache import ClusterCache
    from core.live.cluster import ClusterWatcher
    from core.model import ConnectionState

    api = client("http://127.0.0.1:1")
    cache = ClusterCache("local")
    watcher = ClusterWatcher(api, cache, kinds=[("", "ConfigMap")], tick=0.1)
    await watcher.start()
    try:
        await watcher.wait_until(lambda: cache.state is ConnectionState.UNREACHABLE, timeout=5)
        # The message says what cannot be reached (the cluster's own row names the cluster; the heartbeat's
        # "API server not responding: ..." no longer repeats the cluster prefix).
        assert "127.0.0.1:1" in cache.message and "Connect" in cache.message, cache.message
        assert cache.since is not None
    finally:
        await watcher.stop()
        await api.close()


async def test_throttling_carries_retry_after(serve: Callable[..., Awaitable[str]]) -> None:
    """K8: a 429 becomes Throttled with the server's Retry-After, which infinite_watch waits at least."""
    from core.live.watch_events import Throttled
    from core.live.watching import infinite_watch

    async def busy(request: web.Request) -> web.Response:
        response = status(429, "Too many requests, please try again later.", "TooManyRequests")
        response.headers["Retry-After"] = "7"
        return response

    api = client(await serve({"/api/v1/configmaps": busy}))
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 2:
            raise asyncio.CancelledError

    try:
        with pytest.raises(Throttled) as caught:
            await api.list(CM)
        assert caught.value.retry_after == 7 and caught.value.transient
        with pytest.raises(asyncio.CancelledError):
            async for _ in infinite_watch(api, CM, settings=WatchSettings(), sleep=sleep):
                pass
        assert delays == [7, 7]
    finally:
        await api.close()


async def test_throttled_kind_shows_on_the_cluster_and_waits_retry_after(serve: Callable[..., Awaitable[str]]) -> None:
    """K8 in a watcher: ConfigMaps answer 429 with Retry-After 2 while Secrets list fine. The cluster is
    Throttled (a state of its own: neither Degraded nor Unreachable) with a message saying so and the
    server's words, the other kind is listed, and the throttled list is not retried before Retry-After
    (one request in the first second, not a storm)."""
    from core.live.cache import ClusterCache
    from core.live.cluster import ClusterWatcher
    from core.model import ConnectionState

    calls: list[float] = []
    loop = asyncio.get_running_loop()

    async def busy(request: web.Request) -> web.Response:
        calls.append(loop.time())
        response = status(429, "Too many requests, please try again later.", "TooManyRequests")
        response.headers["Retry-After"] = "2"
        return response

    async def secrets(request: web.Request) -> web.Response:
        if request.query.get("watch") == "true":
            await asyncio.sleep(30)
        return web.json_response({"kind": "SecretList", "items": [], "metadata": {"resourceVersion": "5"}})

    async def version(request: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "36"})

    async def discovery(request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "configmaps", "namespaced": True, "kind": "ConfigMap", "verbs": ["list", "watch", "get"]},
            {"name": "secrets", "namespaced": True, "kind": "Secret", "verbs": ["list", "watch", "get"]}]})

    async def api_versions(request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"]})

    async def groups(request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroupList", "groups": []})

    url = await serve({"/api/v1/configmaps": busy, "/api/v1/secrets": secrets, "/version": version,
                       "/api/v1": discovery, "/api": api_versions, "/apis": groups})
    api = client(url)
    cache = ClusterCache("local", unreachable_after=30.0)
    watcher = ClusterWatcher(api, cache, kinds=[("", "ConfigMap"), ("", "Secret")], tick=0.05,
                             settings=WatchSettings(heartbeat_interval=0.2))
    started = loop.time()
    await watcher.start()
    try:
        await watcher.wait_until(lambda: cache.listed("", "Secret") and cache.state is ConnectionState.THROTTLED,
                                 timeout=5)
        assert cache.message.startswith("throttled by the API server: 1 of 2 kinds waiting (ConfigMap): "), \
            cache.message
        assert "Too many requests" in cache.message, cache.message
        assert cache.message.endswith("(the server asks to retry after 2s)"), cache.message
        await asyncio.sleep(1.0)
        early = [t for t in calls if t - started < 1.5]
        assert len(early) == 1, [round(t - started, 2) for t in calls]
    finally:
        await watcher.stop()
        await api.close()
