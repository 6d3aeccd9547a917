"""An app owned by Argo CD, against real kube-apiservers holding Argo CD's real ``Application`` CRD.

Argo CD's controller cannot be built here (its ``gitops-engine`` module does not build on this proxy), so
these tests play the controller's part: they write the Application's ``status`` (``sync``, ``health``,
``resources``, ``history``, ``operationState``) exactly as Argo CD's API documents it, and clear
``operation`` when "the controller" has run it. Everything fleetdeck does is real: the ``fleetdeck`` CLI in
a subprocess, the engine, the apiserver, its audit log and the journal.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.errors import ReadOnlyError
from core.journal import OperatorIdentity, read_entries
from core.live.kube import KubeClient
from core.live.kubeconfig import load_kubeconfig
from core.model import Owner
from core.sync.lease import OperationLease
from devcluster import ClusterInfo, audit_events, mutating_events
from tests.cluster.conftest import StartEngine
from tests.cluster.test_cli import run
from tests.cluster.test_missing_crds import wait_gone

pytestmark = pytest.mark.cluster

CRD_FILE = Path("/work/shared/corpus/crds/application-crd.yaml")
CRD_NAME = "applications.argoproj.io"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
ADMIN = "fleetdeck-admin"
MERGE = "application/merge-patch+json"
AUTOMATED = {"prune": True, "selfHeal": True}
OLD, NEW = "1" * 40, "2" * 40


def apps_path(namespace: str, name: str = "") -> str:
    return f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/applications" + (f"/{name}" if name else "")


@pytest.fixture(scope="module")
def argocd_crd(control_plane: Any) -> Iterator[None]:
    """Argo CD's real Application CRD in fd-a and fd-b (removed again after the module)."""
    if not CRD_FILE.is_file():
        pytest.skip(f"the Application CRD is not available: {CRD_FILE}")
    crd = yaml.safe_load(CRD_FILE.read_text())
    clusters = [control_plane.cluster(name) for name in ("fd-a", "fd-b")]
    for cluster in clusters:
        rest = cluster.rest()
        rest.apply(f"{CRD_PATH}/{CRD_NAME}", crd)
        deadline = time.monotonic() + 30
        while True:
            conditions = (rest.get(f"{CRD_PATH}/{CRD_NAME}").get("status") or {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                break
            assert time.monotonic() < deadline, "the Application CRD is not Established"
            time.sleep(0.2)
    yield
    for cluster in clusters:
        cluster.rest().delete(f"{CRD_PATH}/{CRD_NAME}")
    for cluster in clusters:
        wait_gone(cluster.rest(), f"{CRD_PATH}/{CRD_NAME}")


def application(namespace: str, repo: Path, *, server: str = "https://kubernetes.default.svc",
                name: str = "") -> dict[str, Any]:
    """An Application for the test's app (named after it), auto-synced, as a team would have it."""
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name or namespace, "namespace": namespace},
        "spec": {"project": "default",
                 "source": {"repoURL": f"file://{repo}", "path": "apps/web", "targetRevision": "main"},
                 "destination": {"server": server, "namespace": namespace},
                 "syncPolicy": {"automated": dict(AUTOMATED), "syncOptions": ["CreateNamespace=true"]}},
    }


def controller_status(namespace: str, repo: Path, *, revision: str = NEW, operation: str = "") -> dict[str, Any]:
    """``status`` as Argo CD's application controller writes it (fields per Argo CD's API reference)."""
    source = {"repoURL": f"file://{repo}", "path": "apps/web", "targetRevision": "main"}
    resources = [{"group": "apps", "version": "v1", "kind": "Deployment", "namespace": namespace, "name": "web",
                  "status": "Synced", "health": {"status": "Healthy"}},
                 {"version": "v1", "kind": "Service", "namespace": namespace, "name": "web",
                  "status": "OutOfSync", "health": {"status": "Healthy"}}]
    status: dict[str, Any] = {
        "sync": {"status": "OutOfSync", "revision": revision, "comparedTo": {"source": source,
                                                                            "destination": {"namespace": namespace}}},
        "health": {"status": "Healthy"},
        "resources": resources,
        "conditions": [{"type": "SyncError", "message": "one resource failed to sync",
                        "lastTransitionTime": "2026-12-07T10:00:00Z"}],
        "history": [
            {"id": 1, "revision": OLD, "source": source, "deployedAt": "2026-12-06T10:00:00Z",
             "deployStartedAt": "2026-12-06T09:59:58Z", "initiatedBy": {"username": "bob"}},
            {"id": 2, "revision": NEW, "source": source, "deployedAt": "2026-12-07T10:00:00Z",
             "deployStartedAt": "2026-12-07T09:59:58Z", "initiatedBy": {"automated": True}},
        ],
        "sourceType": "Kustomize", "reconciledAt": "2026-12-07T10:00:05Z",
    }
    if operation:
        status["operationState"] = {"operation": {"sync": {"revision": revision}}, "phase": operation,
                                    "message": "successfully synced (all tasks run)",
                                    "startedAt": "2026-12-07T09:59:58Z", "finishedAt": "2026-12-07T10:00:00Z",
                                    "syncResult": {"revision": revision, "resources": []}}
    return status


def play_controller(cluster: ClusterInfo, namespace: str, repo: Path, **kwargs: Any) -> dict[str, Any]:
    """Run "the controller": write status (no status subresource on this CRD) and clear a pending operation."""
    body = {"status": controller_status(namespace, repo, **kwargs), "operation": None}
    written: dict[str, Any] = cluster.rest().request("PATCH", apps_path(namespace, namespace), body=body,
                                                     content_type=MERGE)
    return written


def create_application(cluster: ClusterInfo, namespace: str, repo: Path) -> dict[str, Any]:
    cluster.rest().request("POST", apps_path(namespace), body=application(namespace, repo))
    return play_controller(cluster, namespace, repo, operation="Succeeded")


def owned_fleet(tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str, **extra: Any) -> Path:
    path = tmp_path / "fleetdeck.yaml"
    path.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main", "interval": 3600},
        "clusters": [{"name": cluster.name, "kubeconfig": str(cluster.kubeconfig), "context": cluster.admin_context,
                      **extra}],
        "apps": [{"name": namespace, "path": "apps/web", "namespace": namespace}],
    }))
    return path


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def admin_writes(cluster: ClusterInfo, since: dt.datetime) -> list[tuple[str, str]]:
    """(verb, resource/name) of every write the admin user sent since ``since`` (dry runs marked)."""
    out = []
    for event in mutating_events(audit_events(cluster, since=since), user=ADMIN):
        ref = event.get("objectRef") or {}
        dry = " dry-run" if "dryRun=All" in event.get("requestURI", "") else ""
        out.append((event["verb"] + dry, f"{ref.get('resource')}/{ref.get('name', '')}"))
    return out


def without_lease(writes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Writes other than the operation Lease (and the fleetdeck-system namespace it lives in)."""
    return [w for w in writes if not w[1].startswith(("leases/", "namespaces/fleetdeck-system"))]


def journal(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines() if line.strip()]


def merged(obj: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return patch
    out = dict(obj) if isinstance(obj, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merged(out.get(key), value)
    return out


def comparable(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "managedFields", "generation")}
    return {**obj, "metadata": meta}


def status_row(tmp_path: Path, fleet: Path) -> dict[str, Any]:
    result = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json")
    assert result.returncode in (0, 1), result.stdout + result.stderr
    row: dict[str, Any] = json.loads(result.stdout)["apps"][0]
    return row


def test_cli_status_sync_pause_resume_rollback_through_argocd(
        argocd_crd: None, tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> None:
    """The real CLI against an app an Application owns: status says argocd; sync writes exactly the plan's
    patch (``operation``); pause removes ``automated`` with fleetdeck's annotations and resume restores it
    exactly; rollback turns auto-sync off first, then syncs a revision of ``status.history``. The audit log
    shows each action's writes as exactly its patches (plus the operation Lease) and the resulting object is
    the previous one with the patch merged; the journal records each action with its patches."""
    app = namespace
    create_application(cluster, namespace, repo)
    fleet = owned_fleet(tmp_path, repo, cluster, namespace)
    rest = cluster.rest()

    row = status_row(tmp_path, fleet)
    assert row["owner"] == "argocd"
    assert row["owner_object"] == {"cluster": cluster.name, "group": "argoproj.io", "kind": "Application",
                                   "namespace": namespace, "name": app}
    controller = row["controller"]
    assert controller["sync"] == "OutOfSync" and controller["revision"] == NEW and controller["automated"] is True
    assert controller["health"]["status"] == "Healthy"
    assert controller["operation"]["phase"] == "Succeeded" and controller["operation"]["pending"] is False
    assert {"resource": f"Service/{namespace}/web", "sync": "OutOfSync", "health": "Healthy",
            "message": ""} in controller["resources"]
    assert [(h["revision"], h["initiated_by"], h["trigger"]) for h in controller["history"]] == [
        (OLD, "bob", "manual"), (NEW, "automated", "automated")]
    assert any(c["type"] == "ArgoCDSyncError" for c in controller["conditions"])
    diff = run(tmp_path, "diff", app, "--fleet", str(fleet))  # fleetdeck's own comparison, marked
    assert diff.returncode == 1 and diff.stdout.startswith(
        f"# owner argocd (Application {namespace}/{app} on {cluster.name}): fleetdeck's own comparison"), diff.stdout
    table = run(tmp_path, "status", "--fleet", str(fleet))
    assert "OWNER" in table.stdout.splitlines()[0] and " argocd " in table.stdout

    def act(*args: str) -> tuple[str, list[tuple[str, str]], dict[str, Any], dict[str, Any]]:
        before = rest.get(apps_path(namespace, app))
        since = now()
        result = run(tmp_path, *args, "--fleet", str(fleet))
        assert result.returncode == 0, result.stdout + result.stderr
        time.sleep(1.0)  # the audit event of the last request may trail its response
        return result.stdout, admin_writes(cluster, since), before, rest.get(apps_path(namespace, app))

    # sync --dry-run: the patch through the server's dry run only; nothing stored, no Lease
    out, writes, before, after = act("sync", app, "--dry-run")
    assert f"Application {namespace}/{app}: set operation.sync{{revision: " in out
    assert writes == [("patch dry-run", f"applications/{app}")]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]

    # sync: exactly one patch of the Application, the one the plan printed
    out, writes, before, after = act("sync", app, "--yes")
    planned = json.loads(next(line for line in out.splitlines() if line.startswith("        {")).strip())
    assert set(planned) == {"operation"} and planned["operation"]["sync"]["revision"] == row["revision"]
    assert without_lease(writes) == [("patch", f"applications/{app}")]
    assert any(w[1].startswith("leases/fleetdeck-op-") for w in writes)  # the same Lease as fleetdeck's syncs
    assert comparable(after) == comparable(merged(before, planned))
    play_controller(cluster, namespace, repo, operation="Succeeded")

    # pause: automated removed, kept in an annotation; resume: restored exactly
    out, writes, before, after = act("pause", app, "--reason", "incident 42", "--for", "1h")
    assert f"through argocd (Application {namespace}/{app})" in out
    assert without_lease(writes) == [("patch", f"applications/{app}")]
    assert "automated" not in after["spec"]["syncPolicy"]
    notes = after["metadata"]["annotations"]
    assert notes["fleetdeck.io/paused"] == "true" and notes["fleetdeck.io/pause-reason"] == "incident 42"
    assert json.loads(notes["fleetdeck.io/paused-policy"]) == AUTOMATED and "fleetdeck.io/pause-expires-at" in notes
    assert status_row(tmp_path, fleet)["paused"] is True
    out, writes, before, after = act("resume", app)
    assert without_lease(writes) == [("patch", f"applications/{app}")]
    assert after["spec"]["syncPolicy"] == application(namespace, repo)["spec"]["syncPolicy"]
    assert not any(k.startswith("fleetdeck.io/") for k in after["metadata"].get("annotations") or {})

    # rollback to the older revision of status.history: auto-sync off (recorded) first, then the sync
    out, writes, before, after = act("rollback", app, OLD[:8], "--yes")
    assert without_lease(writes) == [("patch", f"applications/{app}"), ("patch", f"applications/{app}")]
    assert "automated" not in after["spec"]["syncPolicy"]
    assert after["metadata"]["annotations"]["fleetdeck.io/pinned"] == OLD
    assert after["operation"]["sync"]["revision"] == OLD
    assert after["operation"]["sync"]["source"]["path"] == "apps/web"

    entries = [e for e in journal(tmp_path) if e.get("app") == app]
    done = {(e["action"], e["result"]) for e in entries}
    assert {("sync", "succeeded"), ("pause", "succeeded"), ("resume", "succeeded"),
            ("rollback", "succeeded")} <= done
    rollback = next(e for e in entries if e["action"] == "rollback" and e["result"] == "succeeded")
    assert len(rollback["details"]["patches"]) == 2
    verified = run(tmp_path, "audit", "journal")
    assert verified.returncode == 0 and "hash chain intact" in verified.stdout + verified.stderr


def test_cli_read_only_refuses_every_verb_on_an_argocd_app(
        argocd_crd: None, tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> None:
    """Read-only invocations of sync, pause, resume and rollback against an argocd-owned app exit 3 and send
    no write at all (the audit log shows none from the admin user)."""
    app = namespace
    create_application(cluster, namespace, repo)
    fleet = owned_fleet(tmp_path, repo, cluster, namespace)
    since = now()
    for args in (("sync", app, "--yes"), ("sync", app, "--dry-run"), ("pause", app), ("resume", app),
                 ("rollback", app, OLD[:8], "--yes")):
        result = run(tmp_path, *args, "--fleet", str(fleet), "--read-only")
        assert result.returncode == 3 and "read-only" in result.stderr, args
    time.sleep(1.0)
    assert admin_writes(cluster, since) == []


async def test_engine_read_only_and_lease_conflict_on_an_argocd_app(
        argocd_crd: None, tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str,
        engines: StartEngine) -> None:
    """In the engine: read-only mode refuses each verb of an argocd-owned row (journalled, nothing sent);
    a second operator holding the app's operation Lease makes a sync fail with LockedError before any write."""
    from core.errors import LockedError

    app = namespace
    create_application(cluster, namespace, repo)
    fleet = owned_fleet(tmp_path, repo, cluster, namespace)

    ro = await engines(fleet, read_only=True)
    row = next(r for r in ro.snapshot.apps if r.app == app)
    assert row.owner is Owner.ARGOCD
    since = now()
    plan = await ro.plan_sync(app, cluster.name)
    assert plan.blocked.startswith("read-only mode") and plan.patches  # the preview still shows the patch
    with pytest.raises(ReadOnlyError):
        await ro.pause(app, cluster.name, reason="x")
    with pytest.raises(ReadOnlyError):
        await ro.resume(app, cluster.name)
    await ro.refresh(app, cluster.name)  # read-only: fleetdeck's own refresh only, no annotation
    await asyncio.sleep(1.0)
    assert admin_writes(cluster, since) == []
    refused = [e for e in read_entries(tmp_path / "journal-0.jsonl") if e.result == "refused"]
    assert {e.action for e in refused} >= {"pause", "resume"}

    rw = await engines(fleet)
    context = load_kubeconfig(str(cluster.kubeconfig)).context(cluster.admin_context)
    other = KubeClient(cluster=cluster.name, context=context)
    bob = OperatorIdentity(os_user="bob", host="bastion-2", pid=1)
    lease = OperationLease(other, app=app, identity=bob, token="bob-1", what="sync by bob")
    await lease.acquire()
    try:
        plan = await rw.plan_sync(app, cluster.name)
        assert not plan.blocked, plan.blocked
        since = now()
        with pytest.raises(LockedError, match="bob"):
            [s async for s in rw.execute_plan(plan)]
        await asyncio.sleep(1.0)
        assert without_lease(admin_writes(cluster, since)) == []
    finally:
        await lease.release()
        await other.close()
    state = [s async for s in rw.execute_plan(plan)][-1]
    assert state.phase.successful, state.message

    since = now()
    await rw.refresh(app, cluster.name)  # a row's refresh asks Argo CD to refresh: its annotation, journalled
    await asyncio.sleep(1.0)
    assert without_lease(admin_writes(cluster, since)) == [("patch", f"applications/{app}")]
    notes = cluster.rest().get(apps_path(namespace, app))["metadata"]["annotations"]
    assert notes["argocd.argoproj.io/refresh"] == "normal"
    assert ("refresh", "succeeded") in {(e.action, e.result) for e in read_entries(tmp_path / "journal-1.jsonl")}


def test_hub_application_maps_its_destination_to_the_fleet_cluster(
        argocd_crd: None, tmp_path: Path, repo: Path, clusters: list[ClusterInfo], namespace: str) -> None:
    """An Application in a hub cluster (fd-a) whose destination server is fd-b's API server owns the app on
    fd-b: that row is argocd-owned with its object in fd-a; the row on fd-a stays fleetdeck's."""
    hub, spoke = clusters
    rest = hub.rest()
    body = {**application(namespace, repo, server=spoke.server), "status": controller_status(namespace, repo)}
    rest.request("POST", apps_path(namespace), body=body)  # with status: Argo CD has reconciled it
    path = tmp_path / "fleetdeck.yaml"
    path.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main", "interval": 3600},
        "clusters": [{"name": c.name, "kubeconfig": str(c.kubeconfig), "context": c.admin_context}
                     for c in clusters],
        "apps": [{"name": namespace, "path": "apps/web", "namespace": namespace}],
    }))
    result = run(tmp_path, "status", "--fleet", str(path), "-o", "json")
    assert result.returncode in (0, 1), result.stdout + result.stderr
    rows = {r["cluster"]: r for r in json.loads(result.stdout)["apps"]}
    assert rows[spoke.name]["owner"] == "argocd"
    assert rows[spoke.name]["owner_object"]["cluster"] == hub.name
    assert rows[hub.name]["owner"] == "fleetdeck"


def test_fleet_file_override_that_contradicts_the_cluster_is_a_warning(
        argocd_crd: None, tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> None:
    """``owner: fleetdeck`` on a cluster where an Application manages the app: fleetdeck owns the row, and
    the row carries an OwnerOverride warning saying both would apply the app's objects."""
    create_application(cluster, namespace, repo)
    fleet = owned_fleet(tmp_path, repo, cluster, namespace, owner="fleetdeck")
    row = status_row(tmp_path, fleet)
    assert row["owner"] == "fleetdeck"
    warning = next(c for c in row["conditions"] if c["type"] == "OwnerOverride")
    assert warning["severity"] == "warning" and "would both apply" in warning["message"]



async def test_fleetdeck_automation_never_syncs_an_argocd_owned_app(
        argocd_crd: None, tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str,
        engines: StartEngine) -> None:
    """The fleet file asks for automated sync, but Argo CD owns the app: fleetdeck's automation leaves it to
    Argo CD (two appliers for the same objects is what owners exist to prevent); no object of the app is
    written."""
    create_application(cluster, namespace, repo)
    fleet = tmp_path / "fleetdeck.yaml"
    fleet.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main", "interval": 3600},
        "clusters": [{"name": cluster.name, "kubeconfig": str(cluster.kubeconfig), "context": cluster.admin_context}],
        "apps": [{"name": namespace, "path": "apps/web", "namespace": namespace,
                  "sync": {"automated": True, "prune": True}}],
    }))
    engine = await engines(fleet)
    assert next(r for r in engine.snapshot.apps if r.app == namespace).owner is Owner.ARGOCD
    since = now()
    await engine.sync_automated_apps(wait=True)
    await asyncio.sleep(1.0)
    assert without_lease(admin_writes(cluster, since)) == []  # only the cluster's automation Lease

    # a pause with an expiry: once it has passed, automation resumes the Application (automated restored)
    await engine.pause(namespace, cluster.name, reason="short freeze", expires_in=1.0)
    assert "automated" not in cluster.rest().get(apps_path(namespace, namespace))["spec"]["syncPolicy"]
    await asyncio.sleep(2.5)
    await engine.sync_automated_apps(wait=True)
    restored = cluster.rest().get(apps_path(namespace, namespace))
    assert restored["spec"]["syncPolicy"]["automated"] == AUTOMATED
    assert not any(k.startswith("fleetdeck.io/") for k in restored["metadata"].get("annotations") or {})
