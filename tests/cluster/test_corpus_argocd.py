"""Corpus sweep: argocd-example-apps (guestbook, helm-guestbook, kustomize-guestbook, pre-post-sync, sock-shop)
copied into a tmp Git repo, one fleet file, and for every app the real ``fleetdeck status``, ``diff`` and
``sync --yes`` against a real kube-apiserver. Every app either syncs, with every object its tool renders in
the cluster (kubectl kustomize, helm template or the plain YAML, run here directly), or says why and writes
nothing (audit log). The results are the table in docs/corpus.md."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.desired.kustomize import kustomize_command
from devcluster import ClusterInfo, audit_events, mutating_events
from devcluster.pytest_plugin import make_namespace
from tests.cluster.test_cli import run
from tests.cluster.test_missing_crds import exists
from tests.engine.conftest import git

pytestmark = pytest.mark.cluster

CORPUS = Path("/work/shared/corpus/argocd-example-apps")
APPS = ("guestbook", "helm-guestbook", "kustomize-guestbook", "pre-post-sync", "sock-shop")
ADMIN = "fleetdeck-admin"
PATHS = {"Deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
         "Service": "/api/v1/namespaces/{ns}/services/{name}",
         "Ingress": "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/{name}",
         "Job": "/apis/batch/v1/namespaces/{ns}/jobs/{name}"}
HOOK = "argocd.argoproj.io/hook"
HELM_CHARTS_APP = "kustomize-helm-guestbook"
"""Not in the corpus: helm-guestbook through a kustomization's ``helmCharts`` (a copy of the chart in its
chartHome ``charts/``), added here."""
HELM_CHARTS = """\
helmCharts:
  - name: helm-guestbook
    releaseName: khg
    valuesInline: {replicaCount: 2, service: {type: NodePort}}
"""


def rendered(app: str, repo: Path, helm: Path) -> list[dict[str, Any]]:
    """What the app's own tool prints, run directly (not through fleetdeck)."""
    env = {"HOME": str(repo.parent), "PATH": ""}
    if (repo / app / "kustomization.yaml").is_file():
        helm_flags = ["--enable-helm", "--helm-command", str(helm)] if app == HELM_CHARTS_APP else []
        text = subprocess.run([*kustomize_command(), app, *helm_flags], cwd=repo, capture_output=True, text=True, check=True,
                              env=env).stdout
    elif (repo / app / "Chart.yaml").is_file():
        text = subprocess.run([str(helm), "template", app, app, "--skip-tests"], cwd=repo, capture_output=True,
                              text=True, check=True, env=env).stdout
    else:
        text = "\n---\n".join(p.read_text() for p in sorted((repo / app).glob("*.yaml")))
    return [d for d in yaml.safe_load_all(text) if d]


def is_hook(obj: dict[str, Any]) -> bool:
    return HOOK in ((obj.get("metadata") or {}).get("annotations") or {})


def writes_in(cluster: ClusterInfo, namespace: str, since: dt.datetime) -> list[tuple[str, str]]:
    return [(e["verb"], e.get("requestURI", "")) for e in mutating_events(audit_events(cluster, since=since),
                                                                         user=ADMIN)
            if (e.get("objectRef") or {}).get("namespace") == namespace and "dryRun" not in e.get("requestURI", "")]


def test_every_argocd_example_app_syncs_or_says_why(tmp_path: Path, cluster: ClusterInfo, helm_binary: Path) -> None:
    if not all((CORPUS / app).is_dir() for app in APPS):
        pytest.skip(f"corpus not available: {CORPUS}")
    repo = tmp_path / "repo"
    for app in APPS:
        shutil.copytree(CORPUS / app, repo / app)
    shutil.copytree(CORPUS / "helm-guestbook", repo / HELM_CHARTS_APP / "charts" / "helm-guestbook")
    (repo / HELM_CHARTS_APP / "kustomization.yaml").write_text(HELM_CHARTS)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "argocd-example-apps")
    suffix = secrets.token_hex(3)
    namespaces = {app: make_namespace(cluster, f"corpus-{app}-{suffix}") for app in (*APPS, HELM_CHARTS_APP)}
    fleet = tmp_path / "fleetdeck.yaml"
    fleet.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main", "interval": 3600},
        "clusters": [{"name": cluster.name, "kubeconfig": str(cluster.kubeconfig), "context": cluster.admin_context}],
        "apps": [{"name": app, "path": app, "namespace": ns} for app, ns in namespaces.items()],
    }))
    env = {"FLEETDECK_HELM": str(helm_binary)}
    rest = cluster.rest()
    table: list[str] = []
    try:
        before = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json", env=env)
        assert before.returncode == 1, before.stdout + before.stderr  # everything is missing: out of sync
        rows = {r["app"]: r for r in json.loads(before.stdout)["apps"]}
        for app, ns in namespaces.items():
            objects = rendered(app, repo, helm_binary)
            resources = [o for o in objects if not is_hook(o)]
            hooks = [o for o in objects if is_hook(o)]
            assert rows[app]["sync"] == "OutOfSync", rows[app]
            diff = run(tmp_path, "diff", app, "--fleet", str(fleet), env=env)
            assert diff.returncode == 1 and "Traceback" not in diff.stderr, diff.stdout + diff.stderr
            since = dt.datetime.now(dt.UTC)
            started = time.monotonic()
            synced = run(tmp_path, "sync", app, "--fleet", str(fleet), "--yes", env=env)
            seconds = time.monotonic() - started
            output = synced.stdout + synced.stderr
            assert "Traceback" not in synced.stderr, output
            if synced.returncode != 0:  # it must say why, and have written nothing in the app's namespace
                assert writes_in(cluster, ns, since) == [], output
                table.append(f"| {app} | {len(resources)} | {len(hooks)} | {synced.returncode} | {seconds:.1f} s | "
                             f"not synced: {output.strip().splitlines()[-1]} | | |")
                continue
            missing = [f"{o['kind']}/{o['metadata']['name']}" for o in resources
                       if not exists(rest, PATHS[o["kind"]].format(ns=ns, name=o["metadata"]["name"]))]
            assert missing == [], (app, missing, output)
            for hook in hooks:  # run, succeeded and deleted (HookSucceeded), as Argo CD does
                line = next(x for x in synced.stdout.splitlines() if f"hook Job.batch/{ns}/{hook['metadata']['name']}" in x)
                assert "hook succeeded" in line and "deleted (HookSucceeded)" in line, output
            after = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json", env=env)
            row = next(r for r in json.loads(after.stdout)["apps"] if r["app"] == app)
            assert row["sync"] == "Synced", row
            again = run(tmp_path, "diff", app, "--fleet", str(fleet), env=env)
            assert again.returncode in (0, 1), again.stdout + again.stderr  # 1 only for health
            assert "+ " not in again.stdout and "- " not in again.stdout, again.stdout
            kinds = ", ".join(sorted({o["kind"] for o in resources}))
            health = row["health"]["status"] + (f" ({row['health']['message']})" if row["health"]["message"] else "")
            table.append(f"| {app} | {len(resources)} ({kinds}) | {len(hooks)} | {synced.returncode} | "
                         f"{seconds:.1f} s | {row['sync']} | {health} | diff: no change |")
    finally:
        print("\n".join(table))
        for ns in namespaces.values():
            rest.delete(f"/api/v1/namespaces/{ns}")


def test_helm_charts_without_helm_says_why(tmp_path: Path, cluster: ClusterInfo, namespace: str) -> None:
    """Without helm (none on PATH, no FLEETDECK_HELM) a kustomization using helmCharts gets the chart apps'
    message: status and sync exit 2, and the apiserver sees no write in the app's namespace."""
    if not (CORPUS / "helm-guestbook").is_dir():
        pytest.skip(f"corpus not available: {CORPUS}")
    repo = tmp_path / "repo"
    shutil.copytree(CORPUS / "helm-guestbook", repo / HELM_CHARTS_APP / "charts" / "helm-guestbook")
    (repo / HELM_CHARTS_APP / "kustomization.yaml").write_text(HELM_CHARTS)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "helmCharts")
    fleet = tmp_path / "fleetdeck.yaml"
    fleet.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main", "interval": 3600},
        "clusters": [{"name": cluster.name, "kubeconfig": str(cluster.kubeconfig), "context": cluster.admin_context}],
        "apps": [{"name": "khg", "path": HELM_CHARTS_APP, "namespace": namespace}],
    }))
    no_helm = tmp_path / "bin"
    no_helm.mkdir()
    (no_helm / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    env = {"PATH": str(no_helm)}
    message = (f"kustomization at {HELM_CHARTS_APP} uses helmCharts and needs the helm binary: install Helm 3.x/4.x "
               "or set FLEETDECK_HELM")
    since = dt.datetime.now(dt.UTC)
    status = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json", env=env)
    assert status.returncode == 2 and "Traceback" not in status.stderr, status.stdout + status.stderr
    assert message in json.dumps(json.loads(status.stdout)["apps"][0])
    sync = run(tmp_path, "sync", "khg", "--fleet", str(fleet), "--yes", env=env)
    assert sync.returncode == 2 and "Traceback" not in sync.stderr, sync.stdout + sync.stderr
    assert message in sync.stdout + sync.stderr
    assert writes_in(cluster, namespace, since) == []
