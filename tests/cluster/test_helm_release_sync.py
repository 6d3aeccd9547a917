"""A Flux HelmRelease app synced by the real ``fleetdeck sync`` to a real apiserver, its chart fetched from a
local HTTP chart repository (tests/fixtures/chart_servers.py); an unreachable repository says why and writes
nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster import ClusterInfo
from tests.cluster.test_cli import run
from tests.cluster.test_helm_sync import RESOURCES, contained
from tests.engine.conftest import git
from tests.fixtures.chart_servers import (
    HelmRepoServer,
    OCIRegistry,
    cert_manager_chart,
    closed_port_url,
    package,
    podinfo_chart,
    run_helm,
)

pytestmark = pytest.mark.cluster


def flux_repo(tmp_path: Path, cluster: ClusterInfo, namespace: str, url: str) -> Path:
    """A Git repo in Flux's layout: ``clusters/<cluster>/apps.yaml`` (a Flux Kustomization of ``./apps``),
    and ``apps/`` holding a HelmRepository, a values ConfigMap and the HelmRelease."""
    repo = tmp_path / "repo"
    (repo / "clusters" / cluster.name).mkdir(parents=True)
    (repo / "apps").mkdir()
    (repo / "clusters" / cluster.name / "apps.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": "flux-system"},
        "spec": {"interval": "10m", "path": "./apps", "prune": True,
                 "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}}))
    (repo / "apps" / "release.yaml").write_text(yaml.safe_dump_all([
        {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
         "metadata": {"name": "podinfo", "namespace": namespace}, "spec": {"interval": "5m", "url": url}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "podinfo-values", "namespace": namespace},
         "data": {"values.yaml": "ui: {message: from a ConfigMap}\nreplicaCount: 1\n"}},
        {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
         "metadata": {"name": "podinfo", "namespace": namespace},
         "spec": {"interval": "10m", "chart": {"spec": {"chart": "podinfo", "version": "6.x",
                                                        "sourceRef": {"kind": "HelmRepository", "name": "podinfo"}}},
                  "valuesFrom": [{"kind": "ConfigMap", "name": "podinfo-values"}],
                  "values": {"replicaCount": 2, "redis": {"enabled": True}}}},
    ]))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "podinfo HelmRelease")
    return repo


def fleet_file(tmp_path: Path, repo: Path, cluster: ClusterInfo) -> Path:
    path = tmp_path / "fleetdeck.yaml"
    path.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main", "interval": 3600},
        "import": {"flux": True},
        "clusters": [{"name": cluster.name, "kubeconfig": str(cluster.kubeconfig), "context": cluster.admin_context}],
        "apps": [],
    }))
    return path


def row(stdout: str, app: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = json.loads(stdout)["apps"]
    return next(r for r in rows if r["app"] == app)


def test_helm_release_syncs_its_chart(tmp_path: Path, cluster: ClusterInfo, namespace: str,
                                      helm_binary: Path) -> None:
    """The HelmRelease app ``<namespace>.podinfo`` syncs the chart as ``helm template`` renders it with the
    ConfigMap's values under spec.values; the row is Synced afterwards. The parent Kustomization's objects
    (HelmRelease, HelmRepository, ConfigMap) are not part of it."""
    home = tmp_path / "helm-home"
    server = HelmRepoServer(tmp_path / "served")
    server.directory.mkdir()
    app = f"{namespace}.podinfo"
    with server.running():
        server.publish(helm_binary, home, [podinfo_chart(tmp_path / "src", v) for v in ("6.1.0", "6.2.0", "7.0.0")])
        repo = flux_repo(tmp_path, cluster, namespace, server.url)
        fleet = fleet_file(tmp_path, repo, cluster)
        env = {"FLEETDECK_HELM": str(helm_binary)}
        values = tmp_path / "values.json"
        values.write_text(json.dumps({"ui": {"message": "from a ConfigMap"}, "replicaCount": 2,
                                      "redis": {"enabled": True}}))
        out = run_helm(helm_binary, home, "template", "podinfo", str(server.directory / "podinfo-6.2.0.tgz"),
                       "--namespace", namespace, "--values", str(values), "--skip-tests", "--include-crds")
        expected = [d for d in yaml.safe_load_all(out) if d]
        assert sorted((o["kind"], o["metadata"]["name"]) for o in expected) == [
            ("Deployment", "podinfo"), ("Deployment", "podinfo-redis"), ("Service", "podinfo")]

        before = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json", env=env)
        assert row(before.stdout, app)["sync"] == "OutOfSync", before.stdout + before.stderr

        synced = run(tmp_path, "sync", app, "--fleet", str(fleet), "--yes", env=env)
        assert synced.returncode == 0, synced.stdout + synced.stderr
        rest = cluster.rest()
        for obj in expected:
            live = rest.get(RESOURCES[obj["kind"]].format(ns=namespace, name=obj["metadata"]["name"]))
            assert contained(obj, live) == [], (obj["kind"], contained(obj, live))
        deployment = rest.get(RESOURCES["Deployment"].format(ns=namespace, name="podinfo"))
        assert deployment["spec"]["replicas"] == 2
        env_vars = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {"name": "PODINFO_UI_MESSAGE", "value": "from a ConfigMap"} in env_vars
        configmaps = {c["metadata"]["name"] for c in rest.get(f"/api/v1/namespaces/{namespace}/configmaps")["items"]}
        assert "podinfo-values" not in configmaps  # the Kustomization app's object: that app was not synced

        after = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json", env=env)
        assert row(after.stdout, app)["sync"] == "Synced", after.stdout + after.stderr


def test_unreachable_chart_repository_says_why_and_writes_nothing(tmp_path: Path, cluster: ClusterInfo,
                                                                   namespace: str, helm_binary: Path) -> None:
    """With the repository's URL unreachable the row names the URL and the reason, ``status`` and ``sync``
    exit 2, and nothing is created (no empty desired state, so nothing could be pruned either)."""
    dead = closed_port_url()
    repo = flux_repo(tmp_path, cluster, namespace, dead)
    fleet = fleet_file(tmp_path, repo, cluster)
    env = {"FLEETDECK_HELM": str(helm_binary)}
    app = f"{namespace}.podinfo"

    status = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json", env=env)
    assert status.returncode == 2, status.stdout + status.stderr
    assert "Traceback" not in status.stderr
    text = json.dumps(row(status.stdout, app))
    assert f"chart repository {dead} unreachable: " in text and "Connection refused" in text, text

    sync = run(tmp_path, "sync", app, "--fleet", str(fleet), "--yes", env=env)
    assert sync.returncode == 2, sync.stdout + sync.stderr
    assert f"chart repository {dead} unreachable" in sync.stdout + sync.stderr
    assert "Traceback" not in sync.stderr
    assert cluster.rest().get(f"/apis/apps/v1/namespaces/{namespace}/deployments")["items"] == []
    assert cluster.rest().get(f"/api/v1/namespaces/{namespace}/services")["items"] == []


def test_oci_chart_ref_release_syncs(tmp_path: Path, cluster: ClusterInfo, namespace: str, helm_binary: Path) -> None:
    """A HelmRelease with ``chartRef: OCIRepository`` (``ref.semver``, pushed to the fixture registry with the real
    ``helm push``) syncs what ``helm template`` renders for the chosen version; ``install.crds: Skip`` keeps
    the chart's ``crds/`` out of the cluster."""
    home = tmp_path / "helm-home"
    registry = OCIRegistry()
    with registry.running():
        for version in ("1.16.2", "1.17.0", "2.0.0"):
            registry.push(helm_binary, home, package(helm_binary, home, cert_manager_chart(tmp_path / "src", version),
                                                     tmp_path / "pk"), "charts")
        repo = tmp_path / "repo"
        (repo / "clusters" / cluster.name).mkdir(parents=True)
        (repo / "infra").mkdir()
        (repo / "clusters" / cluster.name / "infra.yaml").write_text(yaml.safe_dump({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "infra", "namespace": "flux-system"},
            "spec": {"path": "./infra", "prune": True, "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}}))
        (repo / "infra" / "cert-manager.yaml").write_text(yaml.safe_dump_all([
            {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
             "metadata": {"name": "cert-manager", "namespace": namespace},
             "spec": {"url": f"oci://{registry.host}/charts/cert-manager", "insecure": True,
                      "ref": {"semver": "1.x"}}},
            {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
             "metadata": {"name": "cert-manager", "namespace": namespace},
             "spec": {"chartRef": {"kind": "OCIRepository", "name": "cert-manager"}, "install": {"crds": "Skip"},
                      "values": {"config": {"enableGatewayAPI": True}}}},
        ]))
        git(repo, "init", "-q", "-b", "main")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "cert-manager")
        fleet = fleet_file(tmp_path, repo, cluster)
        env = {"FLEETDECK_HELM": str(helm_binary)}
        app = f"{namespace}.cert-manager"
        values = tmp_path / "values.json"
        values.write_text(json.dumps({"config": {"enableGatewayAPI": True}}))
        pulled = tmp_path / "pulled"
        pulled.mkdir()
        run_helm(helm_binary, home, "pull", f"oci://{registry.host}/charts/cert-manager", "--version", "1.17.0",
                 "--plain-http", "-d", str(pulled))
        out = run_helm(helm_binary, home, "template", "cert-manager", str(pulled / "cert-manager-1.17.0.tgz"),
                       "--namespace", namespace, "--values", str(values), "--skip-tests")
        expected = [d for d in yaml.safe_load_all(out) if d]
        assert sorted(o["kind"] for o in expected) == ["Deployment", "ServiceAccount"]

        synced = run(tmp_path, "sync", app, "--fleet", str(fleet), "--yes", env=env)
        assert synced.returncode == 0, synced.stdout + synced.stderr
        rest = cluster.rest()
        paths = {"Deployment": RESOURCES["Deployment"], "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts/{name}"}
        for obj in expected:
            live = rest.get(paths[obj["kind"]].format(ns=namespace, name=obj["metadata"]["name"]))
            assert contained(obj, live) == [], (obj["kind"], contained(obj, live))
        args = rest.get(RESOURCES["Deployment"].format(ns=namespace, name="cert-manager"))[
            "spec"]["template"]["spec"]["containers"][0]["args"]
        assert args == ["--enable-gateway-api=true"]
        crds = rest.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
        assert not any(c["metadata"]["name"] == "legacyissuers.cert-manager.io" for c in crds)
        after = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json", env=env)
        assert row(after.stdout, app)["sync"] == "Synced", after.stdout + after.stderr
