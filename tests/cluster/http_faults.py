"""A plain-HTTP fault proxy on 127.0.0.1 in front of a real kube-apiserver, for the real command line.

The proxy terminates nothing of fleetdeck's: fleetdeck speaks plain HTTP to it (a kubeconfig whose server is
``http://127.0.0.1:PORT`` and no credentials), and the proxy forwards every request over HTTPS to the test
apiserver as ``fleetdeck-admin`` (the dev cluster's client certificate). Because it sees HTTP, it can do what
a TCP relay cannot: answer a path with its own status (``429`` with Retry-After, ``5xx``) or slow a response
body down to a byte rate, which is how a big list over a slow link looks.

It runs its own event loop in a thread so that synchronous tests can run the CLI with ``subprocess.run``.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from devcluster import ClusterInfo
from devcluster.components import ClusterLayout

Rule = Callable[[web.Request], web.StreamResponse | None]
"""Looks at a request; returns a response to send instead of forwarding it, or None to forward."""

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


@dataclass
class FaultProxy:
    """``with FaultProxy(cluster) as proxy``: ``proxy.url`` forwards to the cluster; set ``rules`` and
    ``slow`` at any time (they are read per request)."""

    cluster: ClusterInfo
    rules: list[Rule] = field(default_factory=list)
    slow: Callable[[web.Request], float | None] = lambda request: None
    """Bytes per second for this request's response body (None: full speed)."""
    hold: Callable[[web.Request], threading.Event | None] = lambda request: None
    """An event this request waits for before it is forwarded (None: forwarded at once)."""
    chunk: int = 16 * 1024
    requests: list[str] = field(default_factory=list)
    """``METHOD path?query`` of every request seen, in order."""
    url: str = ""
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    def __enter__(self) -> FaultProxy:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fault proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._thread is not None
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def kubeconfig(self, path: Path, name: str) -> Path:
        """A kubeconfig whose only context ``name`` reaches the cluster through this proxy."""
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": name,
            "clusters": [{"name": name, "cluster": {"server": self.url}}],
            "users": [{"name": "proxy", "user": {}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": "proxy"}}],
        }))
        return path

    async def _start(self) -> None:
        pki = ClusterLayout(self.cluster.name, self.cluster.directory).pki
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.load_cert_chain(str(pki.client_cert("admin")), str(pki.client_key("admin")))
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=0),
                                              timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
                                              auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path_qs}")
        for rule in list(self.rules):
            answer = rule(request)
            if answer is not None:
                return answer
        if (gate := self.hold(request)) is not None:
            await asyncio.get_running_loop().run_in_executor(None, gate.wait)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        headers["Accept-Encoding"] = "identity"
        body = await request.read()
        target = f"https://127.0.0.1:{self.cluster.port}{request.path_qs}"
        rate = self.slow(request)
        async with self._session.request(request.method, target, headers=headers, data=body or None) as upstream:
            response = web.StreamResponse(status=upstream.status, headers={
                k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS})
            await response.prepare(request)
            loop = asyncio.get_running_loop()
            began, sent = loop.time(), 0
            step = self.chunk if rate is None else max(1, min(self.chunk, int(rate / 10)))
            try:
                async for piece in upstream.content.iter_chunked(step):
                    await response.write(piece)
                    sent += len(piece)
                    if rate is not None:
                        due = began + sent / rate - loop.time()
                        if due > 0:
                            await asyncio.sleep(due)
                await response.write_eof()
            except (ConnectionResetError, aiohttp.ClientError, asyncio.CancelledError):
                pass
            return response


def status_response(code: int, message: str, reason: str, **headers: str) -> web.Response:
    """A Kubernetes ``Status`` body with ``code``."""
    return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                              "reason": reason, "code": code}, status=code, headers=headers)


def answer_path(path: str, make: Callable[[], web.StreamResponse], *,
                when: Callable[[web.Request], bool] = lambda request: True) -> Rule:
    """A rule answering requests to ``path`` (exactly) with ``make()`` while ``when(request)``."""

    def rule(request: web.Request) -> web.StreamResponse | None:
        return make() if request.path == path and when(request) else None

    return rule

