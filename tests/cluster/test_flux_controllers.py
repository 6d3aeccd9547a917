"""The real Flux controllers (built by scripts/build-flux) reconcile a config repo served over Git's smart
HTTP on 127.0.0.1 into a real kube-apiserver: a GitRepository and a Kustomization create, update and prune
ConfigMaps and a Service (no kube-controller-manager, so nothing that needs a Pod; ``wait: false``); and,
when it built, helm-controller installs a HelmRelease from a chart repository on 127.0.0.1.
"""

from __future__ import annotations

import secrets
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devcluster.api import ApiError, RestClient
from devcluster.flux import FluxInfo
from devcluster.manifests import namespace as namespace_object
from tests.fixtures.chart_servers import HelmRepoServer, write_chart
from tests.fixtures.git_http import GitRepoServer, git_repo_server

pytestmark = pytest.mark.cluster

RECONCILE_TIMEOUT = 120.0


def wait_for(what: str, check: Callable[[], Any], timeout: float = RECONCILE_TIMEOUT) -> Any:
    """Poll ``check`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.3)


def get_or_none(rest: RestClient, path: str) -> Any:
    """GET ``path``; ``None`` when it is not there."""
    try:
        return rest.get(path)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def configmap(name: str, **data: str) -> str:
    """A ConfigMap manifest."""
    body = "".join(f"\n  {k}: {v!r}" for k, v in data.items())
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:{body}\n"


SERVICE = textwrap.dedent("""\
    apiVersion: v1
    kind: Service
    metadata: {name: web}
    spec:
      selector: {app: web}
      ports: [{port: 80, targetPort: 8080}]
    """)


def flux_objects(name: str, namespace: str, url: str, *, interval: str = "10m") -> list[tuple[str, dict[str, Any]]]:
    """A GitRepository (branch main) and a Kustomization of ``./apps/web`` into ``namespace``."""
    git_repo = {
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"url": url, "interval": interval, "ref": {"branch": "main"}, "timeout": "30s"},
    }
    kustomization = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"interval": interval, "path": "./apps/web", "prune": True, "wait": False,
                 "targetNamespace": namespace, "timeout": "1m",
                 "sourceRef": {"kind": "GitRepository", "name": name}},
    }
    return [
        (f"/apis/source.toolkit.fluxcd.io/v1/namespaces/{namespace}/gitrepositories/{name}", git_repo),
        (f"/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{namespace}/kustomizations/{name}", kustomization),
    ]


@pytest.fixture
def flux_namespace(flux_plane: FluxInfo) -> Iterator[str]:
    """A fresh namespace in the Flux cluster."""
    name = f"t-flux-{secrets.token_hex(3)}"
    rest = flux_plane.cluster.rest()
    rest.request("POST", "/api/v1/namespaces", body=namespace_object(name))
    yield name
    rest.delete(f"/api/v1/namespaces/{name}")


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitRepoServer]:
    """The config repo served over smart HTTP on 127.0.0.1."""
    with git_repo_server(tmp_path / "git") as server:
        yield server


def ready_revision(rest: RestClient, namespace: str, name: str) -> str | None:
    """The Kustomization's lastAppliedRevision once it is Ready=True, else ``None``."""
    obj = get_or_none(rest, f"/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{namespace}/kustomizations/{name}")
    status = (obj or {}).get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    revision = status.get("lastAppliedRevision")
    return revision if ready and isinstance(revision, str) else None


def test_git_repository_and_kustomization_reconcile_from_the_git_server(
    flux_plane: FluxInfo, flux_namespace: str, git_server: GitRepoServer
) -> None:
    """Commit 1 (two ConfigMaps and a Service) is applied with Flux's labels; commit 2 changes one ConfigMap
    and deletes the other, which Flux prunes. The source-controller fetched over smart HTTP."""
    ns, rest = flux_namespace, flux_plane.cluster.rest()
    first = git_server.commit({"apps/web/settings.yaml": configmap("settings", colour="blue"),
                               "apps/web/extra.yaml": configmap("extra", a="1"),
                               "apps/web/service.yaml": SERVICE}, "first")
    began = time.monotonic()
    for path, obj in flux_objects("web", ns, git_server.url, interval="15s"):
        rest.request("POST", path.rsplit("/", 1)[0], body=obj)
    revision = wait_for("the first commit applied", lambda: ready_revision(rest, ns, "web"))
    assert revision == f"main@sha1:{first}"
    took_first = time.monotonic() - began
    settings = rest.get(f"/api/v1/namespaces/{ns}/configmaps/settings")
    assert settings["data"] == {"colour": "blue"}
    assert settings["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] == "web"
    assert rest.get(f"/api/v1/namespaces/{ns}/services/web")["spec"]["ports"][0]["port"] == 80
    assert any("git-upload-pack" in r for r in git_server.requests)

    second = git_server.commit({"apps/web/settings.yaml": configmap("settings", colour="green"),
                                "apps/web/extra.yaml": None}, "second")
    began = time.monotonic()
    wait_for("the second commit applied", lambda: ready_revision(rest, ns, "web") == f"main@sha1:{second}")
    took_second = time.monotonic() - began
    assert rest.get(f"/api/v1/namespaces/{ns}/configmaps/settings")["data"] == {"colour": "green"}
    assert get_or_none(rest, f"/api/v1/namespaces/{ns}/configmaps/extra") is None
    print(f"flux reconcile: first commit {took_first:.1f}s after create, second {took_second:.1f}s after push "
          f"(interval 15s)")


def test_helm_controller_installs_a_helm_release_from_a_chart_repository(
    flux_plane: FluxInfo, flux_namespace: str, helm_binary: Path, tmp_path: Path
) -> None:
    """helm-controller (when built) installs a HelmRelease of a chart served by an HTTP chart repository on
    127.0.0.1 (source-controller fetches the index and packages the HelmChart artifact), then upgrades it when
    the values change."""
    if not any(r.role == "helm-controller" for r in flux_plane.records):
        pytest.skip("helm-controller is not built (scripts/build-flux: optional)")
    ns, rest = flux_namespace, flux_plane.cluster.rest()
    chart = write_chart(tmp_path / "charts", "greeter", "0.1.0",
                        {"cm.yaml": """\
                            apiVersion: v1
                            kind: ConfigMap
                            metadata: {name: "{{ .Release.Name }}-greeting"}
                            data: {greeting: {{ .Values.greeting | quote }}}
                            """}, "greeting: hello\n")
    serving = HelmRepoServer(tmp_path / "repo")
    serving.publish(helm_binary, tmp_path / "helm-home", [chart])
    with serving.running():
        repo = {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
                "metadata": {"name": "charts", "namespace": ns}, "spec": {"url": serving.url, "interval": "10m"}}
        release = {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                   "metadata": {"name": "web", "namespace": ns},
                   "spec": {"interval": "10m", "timeout": "1m",
                            "chart": {"spec": {"chart": "greeter", "version": "0.1.0",
                                               "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
                            "install": {"disableWait": True}, "upgrade": {"disableWait": True},
                            "values": {"greeting": "hi"}}}
        began = time.monotonic()
        rest.request("POST", f"/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/helmrepositories", body=repo)
        rest.request("POST", f"/apis/helm.toolkit.fluxcd.io/v2/namespaces/{ns}/helmreleases", body=release)
        cm = wait_for("the release installed",
                      lambda: get_or_none(rest, f"/api/v1/namespaces/{ns}/configmaps/web-greeting"))
        took = time.monotonic() - began
        assert cm["data"] == {"greeting": "hi"}
        assert any(p.endswith("index.yaml") for p in serving.requests)
        path = f"/apis/helm.toolkit.fluxcd.io/v2/namespaces/{ns}/helmreleases/web"
        rest.request("PATCH", path, body={"spec": {"values": {"greeting": "hey"}}},
                     content_type="application/merge-patch+json")
        wait_for("the release upgraded", lambda: (get_or_none(
            rest, f"/api/v1/namespaces/{ns}/configmaps/web-greeting") or {}).get("data") == {"greeting": "hey"})
        ready = wait_for("Ready", lambda: any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in ((rest.get(path).get("status") or {}).get("conditions") or [])))
        assert ready
    print(f"helm-controller: HelmRelease installed {took:.1f}s after create")
