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
