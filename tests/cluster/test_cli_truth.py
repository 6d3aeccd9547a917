"""What the command line prints and returns is what happens, against a real kube-apiserver.

* Read-only, from every source (``--read-only`` before or after the verb, ``FLEETDECK_READ_ONLY``, the fleet
  file's ``readOnly``, a cluster's ``readOnly``), across every verb: the apiserver's audit log shows not one
  mutating request (access reviews excepted), every changing verb exits 3 and journals "refused".
* A dry run with a failed resource is a failure: ``Failed`` and exit 1, not "Succeeded … 1 failed".
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from core.live.api import APIResource
from core.live.kube import KubeClient
from devcluster import ClusterInfo, audit_events, mutating_events, wait_for_audit_event
from tests.cluster.conftest import app_objects, commit, fleet_file
from tests.cluster.test_cli import run

pytestmark = pytest.mark.cluster

ADMIN = "fleetdeck-admin"
CM = APIResource(group="", version="v1", kind="ConfigMap", plural="configmaps", namespaced=True,
                 verbs=frozenset({"get"}))


def with_read_only(fleet: Path, *, cluster_level: bool) -> Path:
    data = yaml.safe_load(fleet.read_text())
    if cluster_level:
        data["clusters"][0]["readOnly"] = True
    else:
        data["readOnly"] = True
    path = fleet.with_name(f"ro-{'cluster' if cluster_level else 'fleet'}.yaml")
    path.write_text(yaml.safe_dump(data))
    return path


async def test_read_only_walk_sends_no_mutating_request(tmp_path: Path, repo: Path, cluster: ClusterInfo,
                                                        namespace: str, api: KubeClient) -> None:
    """Every verb, every source of read-only: zero mutating requests in the audit log; changing verbs
    exit 3 and journal "refused"; looking verbs still answer."""
    app = namespace
    fleet = fleet_file(tmp_path, repo, cluster, namespace)
    first = await asyncio.to_thread(run, tmp_path, "sync", app, "--fleet", str(fleet), "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    commit(repo, app_objects(namespace, replicas=3), "web: 3 replicas")
    sha = json.loads((await asyncio.to_thread(run, tmp_path, "history", app, "--fleet", str(fleet), "-o",
                                              "json")).stdout)["revisions"][1]["sha"]
    sources = {
        "flag before": (["--read-only", "--fleet", str(fleet)], [], {}),
        "flag after": (["--fleet", str(fleet)], ["--read-only"], {}),
        "environment": (["--fleet", str(fleet)], [], {"FLEETDECK_READ_ONLY": "1"}),
        "fleet file": (["--fleet", str(with_read_only(fleet, cluster_level=False))], [], {}),
        "cluster": (["--fleet", str(with_read_only(fleet, cluster_level=True))], [], {}),
    }
    changing = [["sync", app, "--yes"], ["sync", app, "--dry-run"], ["sync", app, "--prune", "--yes"],
                ["rollback", app, sha, "--yes"], ["rollback", app, "--previous", "--yes"],
                ["pause", app, "--for", "1h"], ["resume", app], ["agent", "--once"]]
    looking = [["status", "-o", "json"], ["diff", app], ["history", app], ["events", app, "-o", "json"],
               ["audit", "report"]]
    since = dt.datetime.now(dt.UTC)
    refusals = 0
    for source, (before, after, env) in sources.items():
        for words in changing:
            if source == "cluster" and words[0] == "agent":
                continue  # the agent watches read-only clusters and never syncs them
            result = await asyncio.to_thread(run, tmp_path, *before, *words, *after, env=env)
            assert result.returncode == 3, (source, words, result.stdout + result.stderr)
            assert "refused: read-only mode" in result.stderr, (source, words, result.stderr)
            refusals += 1
        for words in looking:
            result = await asyncio.to_thread(run, tmp_path, *before, *words, *after, env=env)
            assert result.returncode in (0, 1), (source, words, result.stdout + result.stderr)
            assert "Traceback" not in result.stderr
    assert await api.get(CM, "audit-marker", namespace) is None  # the last request: wait for it in the log
    await asyncio.to_thread(
        wait_for_audit_event, cluster,
        lambda e: e.get("verb") == "get" and (e.get("objectRef") or {}).get("name") == "audit-marker",
        since=since, timeout=20)
    events = audit_events(cluster, since=since)
    writes = mutating_events(events, user=ADMIN)
    assert writes == [], [(e.get("verb"), e.get("requestURI")) for e in writes]
    reads = [e for e in events if e.get("user", {}).get("username") == ADMIN]
    assert len(reads) > 50  # the looking verbs did read the cluster
    watches = [e["requestURI"] for e in reads if e.get("verb") == "watch"]
    assert watches == []  # one-shot verbs list what they need once and open no watch
    journal = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    refused = [e for e in journal if e["result"] == "refused" and e["app"] in (app, "")]
    assert len(refused) == refusals
    started = [e for e in journal if e["result"] == "started" and e["ts"] >= since.timestamp()]
    assert started == []
    assert (tmp_path / "ro-cluster.yaml").exists()


def test_dry_run_with_a_failed_resource_fails(tmp_path: Path, repo: Path, cluster: ClusterInfo,
                                              namespace: str) -> None:
    """An object the server rejects fails the dry run: the result says Failed and the exit code is 1."""
    fleet = fleet_file(tmp_path, repo, cluster, namespace)
    invalid = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bad"},
               "spec": {"ports": [{"port": 99999}]}}
    commit(repo, [*app_objects(namespace), invalid], "web + an invalid Service")
    result = run(tmp_path, "sync", namespace, "--fleet", str(fleet), "--dry-run", "-o", "json")
    assert result.returncode == 1, result.stdout + result.stderr
    state = json.loads(result.stdout[result.stdout.index("\n{") + 1:])
    assert state["phase"] == "Failed"
    assert [e["action"] for e in state["entries"] if e["key"]["name"] == "bad"] == ["failed"]


def test_an_unserved_kind_blocks_the_plan(tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> None:
    """A kind the cluster does not serve is shown as such and blocks the plan (exit 2), never "created"."""
    fleet = fleet_file(tmp_path, repo, cluster, namespace)
    widget = {"apiVersion": "example.fleetdeck.dev/v1", "kind": "Widget", "metadata": {"name": "w"}}
    commit(repo, [*app_objects(namespace), widget], "web + a widget")
    result = run(tmp_path, "sync", namespace, "--fleet", str(fleet), "--dry-run")
    assert result.returncode == 2, result.stdout + result.stderr
    widget_line = next(line for line in result.stdout.splitlines() if "Widget" in line and "wave" in line)
    assert "not served" in widget_line and "created" not in widget_line
    assert "blocked" in result.stdout


def test_every_verb_honours_a_rollback_pin(tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> None:
    """After `rollback --previous`, status and diff compare against the pinned revision (as the console
    does), not the branch head; REVISION reads the pinned revision as what runs."""
    app = namespace
    fleet = fleet_file(tmp_path, repo, cluster, namespace)
    assert run(tmp_path, "sync", app, "--fleet", str(fleet), "--yes").returncode == 0
    commit(repo, app_objects(namespace, replicas=3), "web: 3 replicas")
    assert run(tmp_path, "sync", app, "--fleet", str(fleet), "--yes").returncode == 0
    revisions = json.loads(run(tmp_path, "history", app, "--fleet", str(fleet), "-o", "json").stdout)["revisions"]
    head, first = revisions[0]["sha"], revisions[1]["sha"]
    back = run(tmp_path, "rollback", app, "--previous", "--fleet", str(fleet), "--yes")
    assert back.returncode == 0, back.stdout + back.stderr
    assert f"to {first[:8]}" in back.stdout
    result = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json")
    row = json.loads(result.stdout)["apps"][0]
    assert result.returncode == 0, result.stdout + result.stderr  # in sync with the pin
    assert row["pinned"] == first and row["revision"] == first and row["synced_revision"] == first
    assert row["paused"] is True
    diff = run(tmp_path, "diff", app, "--fleet", str(fleet))
    assert diff.returncode == 0, diff.stdout + diff.stderr
    table = run(tmp_path, "status", "--fleet", str(fleet))
    assert first[:8] in table.stdout and head[:8] not in table.stdout
