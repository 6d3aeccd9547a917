"""A kind the cluster does not serve, and no CRD of the same sync defines, blocks the plan before anything is
written: the real ``fleetdeck sync`` (and ``--dry-run``) and the console's preview (``plan_sync``) on a copy of
the Flux example's ``apps/base/podinfo`` (Namespace + HelmRepository + HelmRelease) against a real apiserver
without the Flux CRDs, judged by the apiserver's audit log; with the CRDs installed the same sync succeeds."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster import ClusterInfo, audit_events, mutating_events, wait_for_audit_event
from devcluster.api import ApiError, RestClient
from tests.cluster.conftest import StartEngine
from tests.cluster.test_cli import run
from tests.engine.conftest import git

pytestmark = pytest.mark.cluster

CORPUS = Path("/work/shared/corpus")
PODINFO = "flux2-kustomize-helm-example/apps/base/podinfo"
FLUX_CRDS = {"helmreleases.helm.toolkit.fluxcd.io": "helm.toolkit.fluxcd.io_helmreleases.yaml",
             "helmrepositories.source.toolkit.fluxcd.io": "source.toolkit.fluxcd.io_helmrepositories.yaml"}
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
ADMIN = "fleetdeck-admin"
NS = "podinfo"
"""The corpus's own namespace (cluster-wide: the test removes it afterwards)."""


def corpus() -> Path:
    for candidate in (Path(__file__).parents[3] / "shared" / "corpus", CORPUS):
        if (candidate / PODINFO / "kustomization.yaml").is_file():
            return candidate
    pytest.skip("the shared corpus (flux2-kustomize-helm-example) is not available")


def exists(rest: RestClient, path: str) -> bool:
    try:
        rest.get(path)
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def wait_gone(rest: RestClient, path: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while exists(rest, path):
        assert time.monotonic() < deadline, f"{path} still exists"
        time.sleep(0.5)


def remove_flux(rest: RestClient) -> None:
    """No podinfo namespace and no Flux CRDs (left by an interrupted earlier run)."""
    rest.delete(f"/api/v1/namespaces/{NS}")
    for name in FLUX_CRDS:
        rest.delete(f"{CRD_PATH}/{name}")
    wait_gone(rest, f"/api/v1/namespaces/{NS}")
    for name in FLUX_CRDS:
        wait_gone(rest, f"{CRD_PATH}/{name}")


def install_flux_crds(rest: RestClient, root: Path) -> None:
    for name, file in FLUX_CRDS.items():
        rest.apply(f"{CRD_PATH}/{name}", yaml.safe_load((root / "crds" / file).read_text()))
    deadline = time.monotonic() + 60
    for name in FLUX_CRDS:
        while not any(c["type"] == "Established" and c["status"] == "True"
                      for c in (rest.get(f"{CRD_PATH}/{name}").get("status") or {}).get("conditions") or []):
            assert time.monotonic() < deadline, f"{name} not Established"
            time.sleep(0.2)


def podinfo_fleet(tmp_path: Path, cluster: ClusterInfo) -> Path:
    """A temp Git repo holding a copy of apps/base/podinfo, and a fleet file with it as app ``podinfo``."""
    repo = tmp_path / "repo"
    shutil.copytree(corpus() / PODINFO, repo / "apps" / "base" / "podinfo")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "podinfo from the Flux example")
    path = tmp_path / "fleetdeck.yaml"
    path.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main", "interval": 3600},
        "clusters": [{"name": cluster.name, "kubeconfig": str(cluster.kubeconfig), "context": cluster.admin_context}],
        "apps": [{"name": "podinfo", "path": "apps/base/podinfo", "namespace": NS}],
    }))
    return path


def writes_since(cluster: ClusterInfo, rest: RestClient, since: dt.datetime) -> list[tuple[Any, ...]]:
    """Mutating requests by the admin user since ``since`` (dry runs included), after a marker request
    made last is in the log (so every earlier request is)."""
    assert not exists(rest, "/api/v1/namespaces/default/configmaps/audit-marker-missing-crds")
    wait_for_audit_event(cluster, lambda e: (e.get("objectRef") or {}).get("name") == "audit-marker-missing-crds",
                         since=since, timeout=20)
    return [(e.get("verb"), e.get("requestURI")) for e in mutating_events(audit_events(cluster, since=since),
                                                                           user=ADMIN)]


async def test_unserved_flux_kinds_block_the_plan_until_the_crds_exist(
    tmp_path: Path, cluster: ClusterInfo, engines: StartEngine
) -> None:
    rest = cluster.rest()
    remove_flux(rest)
    fleet = podinfo_fleet(tmp_path, cluster)
    try:
        since = dt.datetime.now(dt.UTC)
        why = "the cluster does not serve kind HelmRepository.source.toolkit.fluxcd.io and no CRD in this sync " \
              "defines it"
        for words in (["sync", "podinfo", "--yes"], ["sync", "podinfo", "--dry-run"]):
            result = run(tmp_path, *words, "--fleet", str(fleet))
            assert result.returncode == 2, (words, result.stdout + result.stderr)  # docs/cli.md: plan blocked
            assert "Traceback" not in result.stderr
            output = result.stdout + result.stderr
            assert why in output and why.replace("HelmRepository.source", "HelmRelease.helm") in output, output
            assert "blocked: HelmRelease/podinfo/podinfo: not served" in result.stdout, output
            assert "nothing was changed" in result.stdout, output

        engine = await engines(fleet)  # what the console's sync preview asks (tui/planning.py)
        plan = await engine.plan_sync("podinfo", cluster.name)
        assert "not served" in plan.blocked and "fluxcd.io" in plan.blocked, plan
        await engine.stop()

        assert writes_since(cluster, rest, since) == []
        assert not exists(rest, f"/api/v1/namespaces/{NS}")  # not even the Namespace

        install_flux_crds(rest, corpus())
        synced = run(tmp_path, "sync", "podinfo", "--yes", "--fleet", str(fleet))
        assert synced.returncode == 0, synced.stdout + synced.stderr
        release = rest.get(f"/apis/helm.toolkit.fluxcd.io/v2/namespaces/{NS}/helmreleases/podinfo")
        assert release["spec"]["chart"]["spec"]["sourceRef"] == {"kind": "HelmRepository", "name": "podinfo"}
        source = rest.get(f"/apis/source.toolkit.fluxcd.io/v1/namespaces/{NS}/helmrepositories/podinfo")
        assert source["spec"]["url"] == "https://stefanprodan.github.io/podinfo"
        namespace = rest.get(f"/api/v1/namespaces/{NS}")
        assert namespace["metadata"]["labels"]["toolkit.fluxcd.io/tenant"] == "dev-team"
        status = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json")
        row = json.loads(status.stdout)["apps"][0]
        assert row["sync"] == "Synced", status.stdout + status.stderr
    finally:
        remove_flux(rest)
