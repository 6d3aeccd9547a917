"""The real command line against a real kube-apiserver seen through the plain-HTTP fault proxy
(``tests/cluster/http_faults.py``): throttling (K8) and slow lists (K3) as an operator would meet them."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from devcluster import ClusterInfo
from tests.cluster.http_faults import FaultProxy, answer_path, status_response
from tests.cluster.test_cli import run

pytestmark = pytest.mark.cluster


def proxied_fleet(tmp_path: Path, repo: Path, proxy: FaultProxy, namespace: str, name: str = "proxied") -> Path:
    kubeconfig = proxy.kubeconfig(tmp_path / "proxied.kubeconfig", name)
    path = tmp_path / "fleetdeck.yaml"
    path.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main", "interval": 3600},
        "clusters": [{"name": name, "kubeconfig": str(kubeconfig)}],
        "apps": [{"name": namespace, "path": "apps/web", "namespace": namespace}],
    }))
    return path


def test_throttled_cluster_reads_throttled_in_status_text_and_json(
        tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> None:
    """Every Deployment list answers 429 with Retry-After 5 (the other kinds list normally): ``status``
    shows the cluster ``Throttled`` (not Degraded, not Unreachable) with the server's words and the wait,
    in the JSON and on stderr; the app's row is stale, so the exit code is 2; and the throttled list was
    not retried before Retry-After (at most one request per 5 s)."""
    with FaultProxy(cluster) as proxy:
        seen: list[float] = []

        def busy() -> web.StreamResponse:
            seen.append(time.monotonic())
            return status_response(429, "Too many requests, please try again later.", "TooManyRequests",
                                   **{"Retry-After": "5"})

        proxy.rules.append(answer_path("/apis/apps/v1/deployments", busy,
                                       when=lambda request: request.method == "GET"))
        fleet = proxied_fleet(tmp_path, repo, proxy, namespace)
        result = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json")
        assert result.returncode == 2, result.stdout + result.stderr
        data = json.loads(result.stdout)
        (record,) = data["clusters"]
        assert record["connection"] == "Throttled", record
        assert record["message"].startswith("throttled by the API server: 1 of "), record
        assert "waiting (apps/Deployment): list Deployment (apps/v1): " in record["message"], record
        assert "Too many requests" in record["message"], record
        assert record["message"].endswith("(the server asks to retry after 5s)"), record
        gaps = [b - a for a, b in itertools.pairwise(seen)]
        assert seen and all(gap >= 4.5 for gap in gaps), gaps

        text = run(tmp_path, "status", "--fleet", str(fleet))
        assert text.returncode == 2
        line = next(line for line in text.stderr.splitlines() if line.startswith("cluster proxied:"))
        assert line.startswith("cluster proxied: Throttled "), text.stderr
        assert "throttled by the API server" in line and "Degraded" not in line, line


def create_configmaps(url: str, namespace: str, count: int, size: int) -> None:
    """``count`` ConfigMaps of ``size`` bytes in ``namespace``, created through the proxy (keep-alive, 16 at
    a time: the dev cluster's TLS handshakes would make one connection per object slow)."""
    import asyncio

    import aiohttp

    async def create_all() -> None:
        async with aiohttp.ClientSession() as session:
            gate = asyncio.Semaphore(16)

            async def one(i: int) -> None:
                body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"bulk-{i:05d}"},
                        "data": {"blob": "x" * size}}
                async with gate, session.post(f"{url}/api/v1/namespaces/{namespace}/configmaps", json=body) as r:
                    assert r.status == 201, await r.text()

            await asyncio.gather(*(one(i) for i in range(count)))

    asyncio.run(create_all())


SLOW_RATE = 90_000
"""Bytes per second of a ConfigMap list through the proxy: a 500-object page of 4 KB objects takes ~22 s,
longer than the 20 s request deadline."""


def test_a_slow_big_list_shows_its_progress_in_status_and_does_not_fail(
        tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> None:
    """K3 with the real CLI: 1,200 ConfigMaps of 4 KB (~5 MB) whose list the proxy slows to 90 KB/s. Each
    500-object page takes longer than the 20 s request deadline and still arrives; when ``status`` gives up
    waiting (its 30 s), the cluster is still Connecting with no error and says how far the list got, in
    the JSON (``listing``) and on stderr."""
    with FaultProxy(cluster) as proxy:
        create_configmaps(proxy.url, namespace, 1200, 4000)

        def slow(request: web.Request) -> float | None:
            listing = request.path == "/api/v1/configmaps" and "watch" not in request.query
            return SLOW_RATE if listing and request.query.get("limit") != "1" else None

        proxy.slow = slow
        fleet = proxied_fleet(tmp_path, repo, proxy, namespace)
        began = time.monotonic()
        result = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json")
        took = time.monotonic() - began
        assert result.returncode == 2, result.stdout + result.stderr  # not loaded in time: said, not hidden
        (record,) = json.loads(result.stdout)["clusters"]
        assert record["connection"] == "Connecting", record
        assert record["message"] == "", record  # nothing failed, however long the page took
        assert record["listing"] in ("listing ConfigMap: 500 objects so far",
                                     "listing ConfigMap: 1,000 objects so far"), record
        print(f"\nK3 CLI: status after {took:.1f}s: {record['listing']}")

        text = run(tmp_path, "status", "--fleet", str(fleet))
        line = next(line for line in text.stderr.splitlines() if line.startswith("cluster proxied:"))
        assert line.startswith("cluster proxied: Connecting ") and "(listing ConfigMap: " in line, text.stderr
        assert "objects so far)" in line, line
        pages = [r for r in proxy.requests if r.startswith("GET /api/v1/configmaps?") and "watch" not in r
                 and "limit=500" in r]
        assert any("continue=" in r for r in pages), pages  # the second page was asked: the first arrived
