"""K1 with a name that does not resolve: the real command line against a fleet of two clusters, one the real
kube-apiserver and one whose server is ``https://no-such-host.invalid:6443`` (RFC 6761: ``.invalid`` never
resolves, so the machine's own resolver answers "no such name" without any network).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from devcluster import ClusterInfo
from tests.cluster.test_cli import run

pytestmark = pytest.mark.cluster

DEAD_SERVER = "https://no-such-host.invalid:6443"


def two_cluster_fleet(tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> Path:
    kubeconfig = tmp_path / "nodns.kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "nodns",
        "clusters": [{"name": "nodns", "cluster": {"server": DEAD_SERVER, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "nodns", "context": {"cluster": "nodns", "user": "u"}}],
    }))
    path = tmp_path / "fleetdeck.yaml"
    path.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main", "interval": 3600},
        "clusters": [{"name": cluster.name, "kubeconfig": str(cluster.kubeconfig), "context": cluster.admin_context},
                     {"name": "nodns", "kubeconfig": str(kubeconfig)}],
        "apps": [{"name": namespace, "path": "apps/web", "namespace": namespace}],
    }))
    return path


def test_unresolvable_cluster_is_unreachable_at_once_and_the_other_syncs(
        tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> None:
    """``status``: the cluster whose host does not resolve is Unreachable with a reason naming the host (in
    the JSON and on stderr), its row is Unknown and the exit code 2; the real cluster's row is read as
    usual. ``sync --cluster REAL`` then syncs the app on the real cluster (exit 0) and ``status`` shows it
    Synced there while the other cluster is still Unreachable."""
    fleet = two_cluster_fleet(tmp_path, repo, cluster, namespace)
    began = time.monotonic()
    result = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json")
    took = time.monotonic() - began
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    data = json.loads(result.stdout)
    clusters = {c["name"]: c for c in data["clusters"]}
    assert clusters["nodns"]["connection"] == "Unreachable"
    assert "no-such-host.invalid" in clusters["nodns"]["message"], clusters["nodns"]["message"]
    assert clusters[cluster.name]["connection"] == "Connected"
    rows = {a["cluster"]: a for a in data["apps"]}
    assert rows["nodns"]["sync"] == "Unknown"
    assert rows[cluster.name]["sync"] == "OutOfSync"  # read from the real cluster: not deployed yet
    print(f"status with an unresolvable cluster took {took:.2f}s")

    text = run(tmp_path, "status", "--fleet", str(fleet))
    assert "cluster nodns: Unreachable" in text.stderr and "no-such-host.invalid" in text.stderr, text.stderr

    synced = run(tmp_path, "sync", namespace, "--cluster", cluster.name, "--fleet", str(fleet), "--yes")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    after = json.loads(run(tmp_path, "status", "--fleet", str(fleet), "-o", "json").stdout)
    rows = {a["cluster"]: a for a in after["apps"]}
    assert rows[cluster.name]["sync"] == "Synced"
    assert {c["name"]: c["connection"] for c in after["clusters"]}["nodns"] == "Unreachable"
