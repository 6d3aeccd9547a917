"""A Helm chart in Git, rendered by the real helm and synced by the real ``fleetdeck sync`` to a real apiserver.

The chart is a copy of the public ``argocd-example-apps/helm-guestbook`` in a tmp Git repo. Each values file
renders to what ``helm template`` prints (object by object), the sync writes those objects, and the cluster
holds them. Without a helm binary the row and the sync say why, with exit 2 and no traceback.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster import ClusterInfo
from tests.cluster.test_cli import run
from tests.cluster.test_live_watch import widget_crd
from tests.core.test_helm import corpus_chart
from tests.engine.conftest import git

pytestmark = pytest.mark.cluster

RESOURCES = {"Deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
             "Service": "/api/v1/namespaces/{ns}/services/{name}"}


def chart_repo(tmp_path: Path) -> Path:
    """A Git repo holding helm-guestbook at ``helm-guestbook/`` (as in the example repository)."""
    repo = tmp_path / "repo"
    shutil.copytree(corpus_chart(), repo / "helm-guestbook")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "helm-guestbook")
    return repo


def chart_fleet(tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str, helm: dict[str, Any]) -> Path:
    """A fleet file with the chart as one app named after the test's namespace."""
    app: dict[str, Any] = {"name": namespace, "path": "helm-guestbook", "namespace": namespace}
    if helm:
        app["helm"] = helm
    path = tmp_path / "fleetdeck.yaml"
    path.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main", "interval": 3600},
        "clusters": [{"name": cluster.name, "kubeconfig": str(cluster.kubeconfig), "context": cluster.admin_context}],
        "apps": [app],
    }))
    return path


def helm_template(helm: Path, repo: Path, release: str, namespace: str, *flags: str) -> list[dict[str, Any]]:
    """``helm template`` run directly on the chart."""
    out = subprocess.run([str(helm), "template", release, "helm-guestbook", "--namespace", namespace, *flags],
                         cwd=repo, capture_output=True, text=True, check=True, env={"HOME": str(repo.parent)})
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def contained(want: Any, have: Any, where: str = "") -> list[str]:
    """Where ``want`` (rendered) is not found in ``have`` (live: server defaults and tracking added)."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return [f"{where}: not a mapping live"]
        return [p for key, value in want.items() for p in contained(value, have.get(key), f"{where}.{key}")]
    if isinstance(want, list):
        if not isinstance(have, list) or len(have) != len(want):
            return [f"{where}: list differs live"]
        return [p for i, (w, h) in enumerate(zip(want, have, strict=True)) for p in contained(w, h, f"{where}[{i}]")]
    return [] if want == have else [f"{where}: {want!r} rendered, {have!r} live"]


@pytest.mark.parametrize("values", ["values.yaml", "values-production.yaml"])
def test_chart_syncs_what_helm_template_renders(tmp_path: Path, cluster: ClusterInfo, namespace: str,
                                                helm_binary: Path, values: str) -> None:
    """``fleetdeck sync`` of helm-guestbook with each values file writes exactly helm template's objects; the
    row is Synced afterwards and ``diff`` finds nothing."""
    repo = chart_repo(tmp_path)
    fleet = chart_fleet(tmp_path, repo, cluster, namespace, {"releaseName": "gb", "valueFiles": [values]})
    env = {"FLEETDECK_HELM": str(helm_binary)}
    expected = helm_template(helm_binary, repo, "gb", namespace, "--values", f"helm-guestbook/{values}")
    assert sorted(o["kind"] for o in expected) == ["Deployment", "Service"]

    before = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json", env=env)
    row = json.loads(before.stdout)["apps"][0]
    assert row["sync"] == "OutOfSync", before.stdout + before.stderr
    assert len(row["drifted"]) == len(expected), row

    synced = run(tmp_path, "sync", namespace, "--fleet", str(fleet), "--yes", env=env)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "Succeeded" in synced.stdout

    rest = cluster.rest()
    for obj in expected:
        live = rest.get(RESOURCES[obj["kind"]].format(ns=namespace, name=obj["metadata"]["name"]))
        assert contained(obj, live) == [], (obj["kind"], contained(obj, live))
    service = rest.get(RESOURCES["Service"].format(ns=namespace, name="gb-helm-guestbook"))
    assert service["spec"]["type"] == ("LoadBalancer" if values == "values-production.yaml" else "ClusterIP")

    after = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json", env=env)
    assert json.loads(after.stdout)["apps"][0]["sync"] == "Synced", after.stdout + after.stderr
    diff = run(tmp_path, "diff", namespace, "--fleet", str(fleet), env=env)
    assert "Traceback" not in diff.stderr
    assert diff.returncode in (0, 1), diff.stdout + diff.stderr  # 1 only for health (no pods run here)
    assert "+ " not in diff.stdout and "- " not in diff.stdout, diff.stdout


def test_missing_helm_says_why_with_exit_2(tmp_path: Path, cluster: ClusterInfo, namespace: str) -> None:
    """Without helm (none on PATH, no FLEETDECK_HELM) the row says what is missing, status and sync exit 2,
    nothing is written and nothing prints a traceback."""
    repo = chart_repo(tmp_path)
    fleet = chart_fleet(tmp_path, repo, cluster, namespace, {})
    no_helm = tmp_path / "bin"
    no_helm.mkdir()
    (no_helm / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    env = {"PATH": str(no_helm)}

    status = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json", env=env)
    assert status.returncode == 2, status.stdout + status.stderr
    assert "Traceback" not in status.stderr
    row = json.loads(status.stdout)["apps"][0]
    text = json.dumps(row)
    assert "Helm chart at helm-guestbook needs the helm binary: install Helm 3.x/4.x or set FLEETDECK_HELM" in text

    sync = run(tmp_path, "sync", namespace, "--fleet", str(fleet), "--yes", env=env)
    assert sync.returncode == 2, sync.stdout + sync.stderr
    assert "needs the helm binary" in sync.stdout + sync.stderr
    assert "Traceback" not in sync.stderr
    assert cluster.rest().get(f"/api/v1/namespaces/{namespace}/services")["items"] == []
    assert cluster.rest().get(f"/apis/apps/v1/namespaces/{namespace}/deployments")["items"] == []


def test_chart_sees_the_destination_clusters_capabilities(tmp_path: Path, cluster: ClusterInfo, namespace: str,
                                                          helm_binary: Path) -> None:
    """Without kubeVersion/apiVersions in the fleet file, the chart's .Capabilities are the destination
    cluster's: the API server's version and the group/versions its discovery serves (a CRD installed there);
    an explicit kubeVersion still wins."""
    group = f"{namespace}.helmcap.test"
    crd_path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}"
    rest = cluster.rest()
    rest.apply(crd_path, widget_crd(group))
    try:
        wait_for(lambda: any(v["version"] == "v1" for g in rest.get("/apis")["groups"] if g["name"] == group
                             for v in g["versions"]), "the CRD served")
        repo = tmp_path / "repo"
        (repo / "cap" / "templates").mkdir(parents=True)
        (repo / "cap" / "Chart.yaml").write_text("apiVersion: v2\nname: cap\nversion: 0.1.0\n")
        (repo / "cap" / "templates" / "cm.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}-cap}\ndata:\n"
            "  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
            f"  group: {{{{ .Capabilities.APIVersions.Has \"{group}/v1\" | quote }}}}\n"
            f"  kind: {{{{ .Capabilities.APIVersions.Has \"{group}/v1/Widget\" | quote }}}}\n")
        git(repo, "init", "-q", "-b", "main")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "capabilities chart")
        env = {"FLEETDECK_HELM": str(helm_binary)}
        server = rest.get("/version")["gitVersion"]

        fleet = chart_fleet(tmp_path, repo, cluster, namespace, {"releaseName": "c"})
        (fleet.parent / "fleetdeck.yaml").write_text(fleet.read_text().replace("helm-guestbook", "cap"))
        synced = run(tmp_path, "sync", namespace, "--fleet", str(fleet), "--yes", env=env)
        assert synced.returncode == 0, synced.stdout + synced.stderr
        data = rest.get(f"/api/v1/namespaces/{namespace}/configmaps/c-cap")["data"]
        assert data == {"kube": server, "group": "true", "kind": "true"}

        pinned = chart_fleet(tmp_path, repo, cluster, namespace, {"releaseName": "c", "kubeVersion": "1.30.2"})
        (pinned.parent / "fleetdeck.yaml").write_text(pinned.read_text().replace("helm-guestbook", "cap"))
        again = run(tmp_path, "sync", namespace, "--fleet", str(pinned), "--yes", env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        data = rest.get(f"/api/v1/namespaces/{namespace}/configmaps/c-cap")["data"]
        assert data == {"kube": "v1.30.2", "group": "true", "kind": "true"}
    finally:
        rest.delete(crd_path)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``check`` until it holds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_imported_argo_cd_application_with_a_helm_source_syncs(tmp_path: Path, cluster: ClusterInfo, namespace: str,
                                                               helm_binary: Path) -> None:
    """An Argo CD Application in the repo whose source is the chart directory, with helm valueFiles and
    parameters, is imported and synced to what ``helm template`` renders with the same flags (release named
    after the Application)."""
    repo = chart_repo(tmp_path)
    application = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": namespace},
        "spec": {"project": "default", "destination": {"name": cluster.name, "namespace": namespace},
                 "source": {"repoURL": "https://git.example/config.git", "path": "helm-guestbook",
                            "helm": {"valueFiles": ["values-production.yaml"],
                                     "parameters": [{"name": "replicaCount", "value": "2"}]}}},
    }
    (repo / "argocd").mkdir()
    (repo / "argocd" / "guestbook.yaml").write_text(yaml.safe_dump(application))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Argo CD Application")
    fleet = tmp_path / "fleetdeck.yaml"
    fleet.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main", "interval": 3600},
        "clusters": [{"name": cluster.name, "kubeconfig": str(cluster.kubeconfig), "context": cluster.admin_context}],
        "import": {"argocd": True},
    }))
    env = {"FLEETDECK_HELM": str(helm_binary)}
    expected = helm_template(helm_binary, repo, namespace, namespace, "--values", "helm-guestbook/values-production.yaml",
                             "--set", "replicaCount=2")

    synced = run(tmp_path, "sync", namespace, "--fleet", str(fleet), "--yes", env=env)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    rest = cluster.rest()
    for obj in expected:
        live = rest.get(RESOURCES[obj["kind"]].format(ns=namespace, name=obj["metadata"]["name"]))
        assert contained(obj, live) == [], (obj["kind"], contained(obj, live))
    deployment = next(o for o in expected if o["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert next(o for o in expected if o["kind"] == "Service")["spec"]["type"] == "LoadBalancer"
