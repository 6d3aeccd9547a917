"""Argo CD hooks against a real control plane: ``fleetdeck sync`` of a copy of argocd-example-apps'
``pre-post-sync`` (with its base ``kustomize-guestbook``), judged from the apiserver's audit log.

The hook Jobs complete for real: kube-controller-manager's Job controller creates the Pod, the scheduler
binds it to the kwok node, and kwok's ``pod-complete`` stage ends a Job's Pod ``Succeeded``; the Job
controller then sets ``Complete``. Nothing patches a status. The failing PreSync hook is a Job whose Pod can
never be scheduled (a nodeSelector no node has) with ``activeDeadlineSeconds: 2``: the Job controller marks it
``Failed`` (DeadlineExceeded) by itself.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster import ClusterInfo, audit_events, mutating_events
from tests.cluster.test_cli import run
from tests.engine.conftest import git

pytestmark = pytest.mark.cluster

CORPUS = Path("/work/shared/corpus/argocd-example-apps")
ADMIN = "fleetdeck-admin"


def corpus_repo(tmp_path: Path, namespace: str, *, failing_presync: bool = False) -> Path:
    """A Git repo holding copies of ``pre-post-sync`` and ``kustomize-guestbook`` (the corpus stays read-only)."""
    if not (CORPUS / "pre-post-sync").is_dir():
        pytest.skip(f"corpus not available: {CORPUS}")
    repo = tmp_path / "repo"
    for name in ("pre-post-sync", "kustomize-guestbook"):
        shutil.copytree(CORPUS / name, repo / name)
    if failing_presync:
        job_file = repo / "pre-post-sync" / "pre-sync-job.yaml"
        job = yaml.safe_load(job_file.read_text())
        job["spec"]["activeDeadlineSeconds"] = 2
        job["spec"]["template"]["spec"]["nodeSelector"] = {"fleetdeck.dev/no-such-node": "true"}
        job_file.write_text(yaml.safe_dump(job))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "argocd-example-apps pre-post-sync")
    return repo


def fleet(tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> Path:
    path = tmp_path / "fleetdeck.yaml"
    path.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main", "interval": 3600},
        "clusters": [{"name": cluster.name, "kubeconfig": str(cluster.kubeconfig), "context": cluster.admin_context}],
        "apps": [{"name": namespace, "path": "pre-post-sync", "namespace": namespace}],
    }))
    return path


def writes(cluster: ClusterInfo, namespace: str, since: dt.datetime) -> list[tuple[str, str, str]]:
    """(verb, resource, name) of the real (not dry-run) writes fleetdeck made in ``namespace``, in order."""
    out = []
    for event in mutating_events(audit_events(cluster, since), user=ADMIN):
        ref: dict[str, Any] = event.get("objectRef") or {}
        if ref.get("namespace") != namespace or "dryRun" in str(event.get("requestURI", "")):
            continue
        if int((event.get("responseStatus") or {}).get("code", 0)) >= 400:
            continue
        out.append((str(event["verb"]), str(ref.get("resource")), str(ref.get("name", ""))))
    return out


def first(events: list[tuple[str, str, str]], verb: str, resource: str, name: str) -> int:
    return next(i for i, e in enumerate(events) if e[0] in verb.split("|") and e[1:] == (resource, name))


def test_pre_post_sync_runs_phases_in_order(tmp_path: Path, cluster: ClusterInfo, namespace: str) -> None:
    """The plan lists PreSync → Sync → PostSync; the audit log shows the PreSync Job created, then deleted
    (HookSucceeded) before the guestbook is applied, and the PostSync Job created after the guestbook."""
    repo = corpus_repo(tmp_path, namespace)
    fleet_path = fleet(tmp_path, repo, cluster, namespace)
    preview = run(tmp_path, "sync", namespace, "--fleet", str(fleet_path), "--dry-run")
    assert preview.returncode == 0, preview.stdout + preview.stderr
    out = preview.stdout
    assert out.index("phase PreSync:") < out.index("pre-post-sync-before") < out.index("phase Sync:")
    assert out.index("phase Sync:") < out.index("pre-post-sync-kustomize-guestbook-ui") < out.index("phase PostSync:")
    assert out.index("phase PostSync:") < out.index("pre-post-sync-after")
    since = dt.datetime.now(dt.UTC)
    result = run(tmp_path, "sync", namespace, "--fleet", str(fleet_path), "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    events = writes(cluster, namespace, since)
    before_created = first(events, "patch|create", "jobs", "pre-post-sync-before")
    before_deleted = first(events, "delete", "jobs", "pre-post-sync-before")
    deployment = first(events, "patch|create", "deployments", "pre-post-sync-kustomize-guestbook-ui")
    service = first(events, "patch|create", "services", "pre-post-sync-kustomize-guestbook-ui")
    after_created = first(events, "patch|create", "jobs", "pre-post-sync-after")
    after_deleted = first(events, "delete", "jobs", "pre-post-sync-after")
    assert before_created < before_deleted < min(deployment, service) < after_created < after_deleted, events
    rest = cluster.rest()
    jobs = rest.get(f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"]
    assert [j["metadata"]["name"] for j in jobs] == []  # both deleted by HookSucceeded
    status = run(tmp_path, "status", "--fleet", str(fleet_path))
    assert "OutOfSync" not in status.stdout and "Missing" not in status.stdout, status.stdout


def test_a_failing_presync_hook_stops_before_the_sync_phase(tmp_path: Path, cluster: ClusterInfo,
                                                          namespace: str) -> None:
    """The PreSync Job fails (deadline exceeded): the sync exits 1 naming the phase, the Sync phase writes
    nothing (no Deployment, Service or PostSync Job request in the audit log) and the failed Job is kept."""
    repo = corpus_repo(tmp_path, namespace, failing_presync=True)
    fleet_path = fleet(tmp_path, repo, cluster, namespace)
    since = dt.datetime.now(dt.UTC)
    result = run(tmp_path, "sync", namespace, "--fleet", str(fleet_path), "--yes")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "PreSync" in result.stdout + result.stderr
    events = writes(cluster, namespace, since)
    assert [e for e in events if e[1] in ("deployments", "services")] == [], events
    assert not [e for e in events if e[2] == "pre-post-sync-after"], events
    job = cluster.rest().get(f"/apis/batch/v1/namespaces/{namespace}/jobs/pre-post-sync-before")
    assert any(c["type"] == "Failed" for c in job["status"]["conditions"])
