"""A force-pushed branch against a real Git repo and a real kube-apiserver: `status` flags the app, `sync`
refuses (exit 3, nothing written, journalled) until the operator passes `--allow-non-descendant`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from core.live.api import APIResource
from core.live.kube import KubeClient
from devcluster import ClusterInfo, audit_events, mutating_events, wait_for_audit_event
from tests.cluster.conftest import app_objects, commit, fleet_file
from tests.cluster.test_cli import run
from tests.engine.conftest import git

pytestmark = pytest.mark.cluster

ADMIN = "fleetdeck-admin"
DEPLOYMENTS = APIResource(group="apps", version="v1", kind="Deployment", plural="deployments", namespaced=True,
                          verbs=frozenset({"get"}))
CM = APIResource(group="", version="v1", kind="ConfigMap", plural="configmaps", namespaced=True,
                 verbs=frozenset({"get"}))


def force_push(repo: Path, namespace: str, *, replicas: int) -> str:
    """Move branch main onto a new root commit (no common history with what was synced); its SHA."""
    git(repo, "checkout", "-q", "--orphan", "rewritten")
    commit(repo, app_objects(namespace, replicas=replicas), "web 2.0, history rewritten")
    sha = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "branch", "-q", "-f", "main", sha)
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", "rewritten")
    return sha


async def replicas(api: KubeClient, namespace: str) -> int:
    """The live Deployment's replicas."""
    live = await api.get(DEPLOYMENTS, "web", namespace)
    assert live is not None
    return int(live["spec"]["replicas"])


async def test_force_push_is_refused_until_acknowledged(tmp_path: Path, repo: Path, cluster: ClusterInfo,
                                                        namespace: str, api: KubeClient) -> None:
    """Sync A; force-push an unrelated B; status shows non_descendant; sync --yes exits 3 and writes nothing
    (audit log); sync --yes --allow-non-descendant exits 0; the journal records the refusal and the
    acknowledged sync with both revisions."""
    app = namespace
    fleet = fleet_file(tmp_path, repo, cluster, namespace)
    first = await asyncio.to_thread(run, tmp_path, "sync", app, "--fleet", str(fleet), "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    synced = git(repo, "rev-parse", "HEAD").strip()
    forced = force_push(repo, namespace, replicas=4)

    status = await asyncio.to_thread(run, tmp_path, "status", "--fleet", str(fleet), "-o", "json")
    assert status.returncode == 1, status.stdout + status.stderr  # OutOfSync
    row = json.loads(status.stdout)["apps"][0]
    assert row["revision"] == forced and row["synced_revision"] == synced
    assert f"{forced[:8]} does not descend from {synced[:8]}" in row["non_descendant"]
    assert "NonDescendant" in [c["type"] for c in row["conditions"]]
    table = await asyncio.to_thread(run, tmp_path, "status", "--fleet", str(fleet))
    assert "non-descendant" in table.stdout and "does not descend" in table.stdout

    since = dt.datetime.now(dt.UTC)
    refused = await asyncio.to_thread(run, tmp_path, "sync", app, "--fleet", str(fleet), "--yes")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "WARNING, history is replaced" in refused.stdout and synced[:8] in refused.stdout
    assert f"warning: synced on {cluster.name}, not in {forced[:8]}: {synced[:8]} web 1.0" in refused.stdout
    assert "refused" in refused.stderr and "--allow-non-descendant" in refused.stderr
    assert await api.get(CM, "audit-marker", namespace) is None  # the last request: wait for it in the log
    await asyncio.to_thread(
        wait_for_audit_event, cluster,
        lambda e: e.get("verb") == "get" and (e.get("objectRef") or {}).get("name") == "audit-marker",
        since=since, timeout=20)
    writes = [e for e in mutating_events(audit_events(cluster, since=since), user=ADMIN)
              if "dryRun=All" not in str(e.get("requestURI"))]
    assert writes == [], [(e.get("verb"), e.get("requestURI")) for e in writes]
    assert await replicas(api, namespace) == 2

    allowed = await asyncio.to_thread(run, tmp_path, "sync", app, "--fleet", str(fleet), "--yes",
                                      "--allow-non-descendant")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "acknowledged with --allow-non-descendant" in allowed.stdout and "Succeeded" in allowed.stdout
    assert await replicas(api, namespace) == 4

    journal = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    syncs = [e for e in journal if e["action"] == "sync" and e["app"] == app][-3:]
    assert [e["result"] for e in syncs] == ["refused", "started", "succeeded"]
    for entry, acknowledged in zip(syncs, (False, True, True), strict=True):
        details = entry["details"]
        assert details["revision"] == forced and details["synced_revision"] == synced
        assert details["acknowledged"] is acknowledged
        assert f"does not descend from {synced[:8]}" in details["non_descendant"]

    after = await asyncio.to_thread(run, tmp_path, "status", "--fleet", str(fleet), "-o", "json")
    row = json.loads(after.stdout)["apps"][0]
    assert row["synced_revision"] == forced and row["non_descendant"] == ""
