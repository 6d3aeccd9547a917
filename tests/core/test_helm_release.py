"""Flux HelmReleases as apps: reading the HelmRelease (release name, values, valuesFrom, CRD policy, sources),
version ranges, discovery from rendered Kustomizations, and with the real helm and local chart servers
(tests/fixtures/chart_servers.py): the Flux example repository's podinfo (HelmRepository) and cert-manager
(OCIRepository via chartRef) rendered exactly as ``helm template`` renders the same chart and values."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.desired.chart_source import ChartRequest, ChartSourceError, fetch, fetch_chart
from core.desired.helm_release import discover_releases, merge_values, plan_release, release_name
from core.desired.imported import discover_imported_apps
from core.desired.render import Renderer
from core.desired.repo import ConfigRepo
from core.desired.semver import highest
from core.desired.spec import AppSource, AppSpec, ClusterSpec, HelmReleaseRef, RepoSpec
from core.errors import RenderError
from tests.core.test_repo import Work
from tests.fixtures.chart_servers import (
    HelmRepoServer,
    OCIRegistry,
    cert_manager_chart,
    closed_port_url,
    package,
    podinfo_chart,
    run_helm,
    write_chart,
)

CORPUS = Path("/work/shared/corpus/flux2-kustomize-helm-example")


def hr(spec: dict[str, Any], name: str = "web", namespace: str = "apps") -> dict[str, Any]:
    return {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def source(kind: str, name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": kind,
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


REPO = source("HelmRepository", "charts", "apps", {"url": "https://charts.example/repo"})
CHART = {"chart": {"spec": {"chart": "web", "version": "1.x", "sourceRef": {"kind": "HelmRepository",
                                                                           "name": "charts"}}}}
REF = HelmReleaseRef("apps", "web", "apps-kustomization")


# ---------------------------------------------------------------------------------------------- reading


def test_release_name_defaults_and_shortening() -> None:
    """``releaseName`` wins; else ``[targetNamespace-]name``; over 53 characters Flux's short form."""
    assert release_name("web", "", "") == "web"
    assert release_name("web", "prod", "") == "prod-web"
    assert release_name("web", "prod", "explicit") == "explicit"
    long = release_name("a" * 40, "b" * 20, "")
    assert len(long) == 53 and long.startswith("b" * 20 + "-" + "a" * 19 + "-")


def test_values_from_configmaps_and_secrets_then_inline_values() -> None:
    """valuesFrom in order (ConfigMap, Secret by base64 data, targetPath typed like --set), then spec.values
    on top; an optional missing source is skipped."""
    secret_values = base64.b64encode(b"db: {password: s3cret, port: 5432}\n").decode()
    objects = [
        REPO,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "base", "namespace": "apps"},
         "data": {"values.yaml": "replicas: 1\ndb: {host: a, port: 1}\nimage: {tag: v1}\n"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "apps"},
         "data": {"values.yaml": secret_values, "token": base64.b64encode(b"42").decode()}},
        hr({**CHART, "valuesFrom": [
            {"kind": "ConfigMap", "name": "base"},
            {"kind": "Secret", "name": "creds"},
            {"kind": "Secret", "name": "creds", "valuesKey": "token", "targetPath": "auth.token"},
            {"kind": "ConfigMap", "name": "absent", "optional": True},
        ], "values": {"replicas": 3, "image": {"pullPolicy": "Always"}}}),
    ]
    plan = plan_release(objects, REF, repo_url="")
    assert json.loads(plan.helm.values) == {
        "replicas": 3, "db": {"host": "a", "port": 5432, "password": "s3cret"},
        "image": {"tag": "v1", "pullPolicy": "Always"}, "auth": {"token": 42}}
    assert plan.helm.release_name == "web" and plan.namespace == "apps"
    assert plan.chart == ChartRequest("https://charts.example/repo", chart="web", version="1.x")
    assert merge_values({"a": {"b": 1}, "l": [1]}, {"a": {"c": 2}, "l": [2]}) == {"a": {"b": 1, "c": 2}, "l": [2]}


def test_secret_values_never_appear_in_errors() -> None:
    """A Secret that is not a YAML mapping is refused without echoing its content."""
    bad = base64.b64encode(b"- s3cret-list-item\n").decode()
    broken = base64.b64encode(b"key: [unclosed s3cret\n").decode()
    for data in (bad, broken):
        objects = [REPO, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "apps"},
                          "data": {"values.yaml": data}},
                   hr({**CHART, "valuesFrom": [{"kind": "Secret", "name": "s"}]})]
        with pytest.raises(RenderError) as caught:
            plan_release(objects, REF, repo_url="")
        assert "s3cret" not in str(caught.value)
        assert "valuesFrom Secret apps/s key values.yaml" in str(caught.value)


def test_missing_values_from_and_missing_release_say_where() -> None:
    objects = [REPO, hr({**CHART, "valuesFrom": [{"kind": "ConfigMap", "name": "nope"}]})]
    with pytest.raises(RenderError, match=r"valuesFrom ConfigMap apps/nope .* not in the output of the same Flux"):
        plan_release(objects, REF, repo_url="")
    with pytest.raises(RenderError, match=r"HelmRelease apps/web is not in the output of Flux Kustomization "
                                          r"apps-kustomization at this revision"):
        plan_release([REPO], REF, repo_url="")
    with pytest.raises(RenderError, match=r"HelmRepository apps/charts is not in the output"):
        plan_release([hr(CHART)], REF, repo_url="")


def test_sources_from_other_kustomizations_come_after_the_parents() -> None:
    """A source or values object missing from the parent's output is looked up among the other
    Kustomizations' objects (namespaces already set); the parent's own wins."""
    shared = source("HelmRepository", "charts", "flux-system", {"url": "https://shared.example/repo"})
    release = hr({"chart": {"spec": {"chart": "web", "sourceRef": {"kind": "HelmRepository", "name": "charts",
                                                                  "namespace": "flux-system"}}},
                  "valuesFrom": [{"kind": "ConfigMap", "name": "v"}]})
    values = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "v", "namespace": "apps"},
              "data": {"values.yaml": "a: 1\n"}}
    plan = plan_release([release], REF, repo_url="", extra=[shared, values])
    assert plan.chart == ChartRequest("https://shared.example/repo", chart="web", version="*")
    assert json.loads(plan.helm.values) == {"a": 1}
    own = source("HelmRepository", "charts", "flux-system", {"url": "https://own.example/repo"})
    assert plan_release([release, own, values], REF, repo_url="", extra=[shared]).chart == ChartRequest(
        "https://own.example/repo", chart="web", version="*")


def test_target_namespace_crds_policy_and_sources() -> None:
    """targetNamespace names the release and is helm's namespace; install.crds Skip leaves CRDs out;
    chartRef OCIRepository (digest > semver > tag), HelmChart, OCI HelmRepository, the config repo's
    GitRepository; a Bucket is refused by name."""
    plan = plan_release([REPO, hr({**CHART, "targetNamespace": "prod", "install": {"crds": "Skip"}})], REF,
                        repo_url="")
    assert (plan.namespace, plan.helm.release_name, plan.helm.include_crds) == ("prod", "prod-web", False)
    plan = plan_release([REPO, hr(CHART)], REF, repo_url="")
    assert plan.helm.include_crds and "upgrade.crds Skip" in plan.crd_note
    assert not plan_release([REPO, hr({**CHART, "upgrade": {"crds": "CreateReplace"}})], REF, repo_url="").crd_note

    oci = source("OCIRepository", "cm", "apps", {"url": "oci://reg.example/charts/cm", "insecure": True,
                                                 "ref": {"semver": "1.x", "tag": "v9"}})
    plan = plan_release([oci, hr({"chartRef": {"kind": "OCIRepository", "name": "cm"}})], REF, repo_url="")
    assert plan.chart == ChartRequest("oci://reg.example/charts/cm", version="1.x", tag="v9", insecure=True)

    helm_chart = source("HelmChart", "web-chart", "apps", {"chart": "web", "version": "2.x",
                                                            "sourceRef": {"kind": "HelmRepository", "name": "charts"}})
    plan = plan_release([REPO, helm_chart, hr({"chartRef": {"kind": "HelmChart", "name": "web-chart"}})], REF,
                        repo_url="")
    assert plan.chart == ChartRequest("https://charts.example/repo", chart="web", version="2.x")

    oci_repo = source("HelmRepository", "charts", "apps", {"url": "oci://reg.example/charts", "type": "oci"})
    assert plan_release([oci_repo, hr(CHART)], REF, repo_url="").chart == ChartRequest(
        "oci://reg.example/charts", chart="web", version="1.x")

    git_chart = {"chart": {"spec": {"chart": "./charts/web", "sourceRef": {"kind": "GitRepository",
                                                                           "name": "flux-system",
                                                                           "namespace": "flux-system"}}}}
    bootstrap = source("GitRepository", "flux-system", "flux-system", {"url": "ssh://git@github.com/o/fleet"})
    assert plan_release([bootstrap, hr(git_chart)], REF, repo_url="/srv/fleet").chart == "charts/web"
    escaping = {"chart": {"spec": {**git_chart["chart"]["spec"], "chart": "../outside"}}}
    with pytest.raises(RenderError, match="leaves the repository"):
        plan_release([bootstrap, hr(escaping)], REF, repo_url="/srv/fleet")
    other = source("GitRepository", "other", "apps", {"url": "https://github.com/o/other.git"})
    other_chart = {"chart": {"spec": {"chart": "web", "sourceRef": {"kind": "GitRepository", "name": "other"}}}}
    with pytest.raises(RenderError, match="is not the config repo"):
        plan_release([other, hr(other_chart)], REF, repo_url="https://github.com/o/fleet")
    assert plan_release([other, hr(other_chart)], REF, repo_url="git@github.com:o/other.git").chart == "web"

    bucket = {"chart": {"spec": {"chart": "web", "sourceRef": {"kind": "Bucket", "name": "b"}}}}
    with pytest.raises(RenderError, match="charts from a Bucket source are not supported"):
        plan_release([hr(bucket)], REF, repo_url="")


def test_version_ranges() -> None:
    """Masterminds ranges as Flux uses them; pre-releases only when the range names one."""
    versions = ["1.0.0", "1.2.0", "1.10.3", "2.0.0", "2.1.0-rc.1", "0.3.1", "6.11.1", "1.0.0-alpha"]
    cases = {">=1.0.0-alpha": "6.11.1", "1.x": "1.10.3", "~1.2": "1.2.0", "^1.2": "1.10.3", "*": "6.11.1",
             "": "6.11.1", "1.2.0": "1.2.0", ">=1.0.0 <2.0.0": "1.10.3", ">=1.0, <1.5": "1.2.0", "^0.3": "0.3.1",
             "1.0 - 1.9": "1.2.0", ">2 || 0.3.x": "6.11.1", ">= 2.1.0-rc.0, < 3": "2.1.0-rc.1", "9.x": None,
             "!=6.11.1": "2.0.0"}
    for constraint, want in cases.items():
        assert highest(versions, constraint) == want, constraint


async def test_discovery_from_rendered_kustomizations() -> None:
    """Every HelmRelease in a Flux app's render becomes ``<namespace>.<name>`` on the clusters where it is
    found; the Kustomization's targetNamespace wins; suspend and fleet-file apps are handled."""
    clusters = [ClusterSpec("staging"), ClusterSpec("production")]
    parent = AppSpec(name="apps", path="apps/{cluster}", namespace="", clusters=("staging", "production"),
                     source=AppSource.FLUX, origin="clusters/x.yaml:1")
    infra = AppSpec(name="infra", path="infra", namespace="infra-ns", source=AppSource.FLUX)
    fleet_app = AppSpec(name="mine", path="mine", namespace="m")
    outputs = {
        "apps/staging": [hr(CHART, "podinfo", "podinfo"), hr({**CHART, "suspend": True}, "extra", "podinfo")],
        "apps/production": [hr(CHART, "podinfo", "podinfo")],
        "infra": [hr(CHART, "cert-manager", "cert-manager"), REPO],
        "mine": [hr(CHART, "ignored", "m")],
    }

    async def render(app: AppSpec, path: str) -> Sequence[Mapping[str, Any]]:
        return outputs[path]

    apps = {a.name: a for a in await discover_releases([parent, infra, fleet_app], clusters, render)}
    assert sorted(apps) == ["infra-ns.cert-manager", "podinfo.extra", "podinfo.podinfo"]
    podinfo = apps["podinfo.podinfo"]
    assert (podinfo.path, podinfo.clusters, podinfo.suspended) == ("apps/{cluster}", ("staging", "production"), False)
    assert podinfo.release == HelmReleaseRef("podinfo", "podinfo", "apps", "", (
        ("apps/production", "infra", "infra", "infra-ns"), ("apps/staging", "infra", "infra", "infra-ns")))
    assert apps["podinfo.extra"].clusters == ("staging",) and apps["podinfo.extra"].suspended
    assert apps["infra-ns.cert-manager"].release == HelmReleaseRef("infra-ns", "cert-manager", "infra", "infra-ns", (
        ("infra", "apps", "apps/production", ""), ("infra", "apps", "apps/staging", "")))
    assert apps["infra-ns.cert-manager"].namespace == "infra-ns"


# ---------------------------------------------------------------------------------------------- servers


@pytest.fixture
def chart_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "chart-cache"
    monkeypatch.setenv("FLEETDECK_CHART_CACHE", str(cache))
    return cache


@pytest.fixture
def helm_home(tmp_path: Path) -> Path:
    return tmp_path / "helm-home"


@pytest.fixture
def chart_repo_server(tmp_path: Path, helm_binary: Path, helm_home: Path) -> Iterator[HelmRepoServer]:
    server = HelmRepoServer(tmp_path / "served")
    server.directory.mkdir()
    with server.running():
        server.publish(helm_binary, helm_home, [podinfo_chart(tmp_path / "src", v)
                                                for v in ("6.0.0", "6.5.1", "7.0.0-rc.1")])
        yield server


@pytest.fixture
def registry(tmp_path: Path, helm_binary: Path, helm_home: Path) -> Iterator[OCIRegistry]:
    oci = OCIRegistry()
    with oci.running():
        for version in ("1.16.2", "1.17.0", "2.0.0"):
            archive = package(helm_binary, helm_home, cert_manager_chart(tmp_path / "src", version), tmp_path / "pk")
            oci.push(helm_binary, helm_home, archive, "charts")
        gateway = write_chart(tmp_path / "src" / "gw", "gateway-helm", "1.8.0", {
            "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ .Release.Name }}-gw'}\n"}, "{}\n")
        oci.push(helm_binary, helm_home, package(helm_binary, helm_home, gateway, tmp_path / "pk"), "gw")
        yield oci


def corpus_repo(tmp_path: Path, http_url: str, oci_host: str) -> Work:
    """The Flux example repository in a tmp Git repo, its chart URLs rewritten to the local servers."""
    if not (CORPUS / "apps").is_dir():
        pytest.skip("the shared corpus (flux2-kustomize-helm-example) is not available")
    work = Work(tmp_path)
    shutil.copytree(CORPUS, work.dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git"))
    repository = work.dir / "apps/base/podinfo/repository.yaml"
    repository.write_text(repository.read_text().replace("https://stefanprodan.github.io/podinfo", http_url))
    for name, url in (("cert-manager.yaml", f"oci://{oci_host}/charts/cert-manager"),
                      ("envoy-gateway.yaml", f"oci://{oci_host}/gw/gateway-helm")):
        file = work.dir / "infrastructure/controllers" / name
        text = file.read_text()
        for official in ("oci://quay.io/jetstack/charts/cert-manager", "oci://docker.io/envoyproxy/gateway-helm"):
            text = text.replace(f"url: {official}", f"url: {url}\n  insecure: true")
        file.write_text(text)
    work.commit({}, "flux example, local chart servers")
    return work


def helm_template(helm: Path, home: Path, chart: Path, release: str, namespace: str, values: Mapping[str, Any],
                  *flags: str) -> dict[tuple[str, str], dict[str, Any]]:
    """``helm template`` run directly, objects by (kind, name)."""
    values_file = home / "direct-values.json"
    home.mkdir(parents=True, exist_ok=True)
    values_file.write_text(json.dumps(values))
    out = run_helm(helm, home, "template", release, str(chart), "--namespace", namespace, "--values",
                   str(values_file), "--skip-tests", *flags)
    return by_key(d for d in yaml.safe_load_all(out) if d)


def by_key(objects: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


async def render_corpus(tmp_path: Path, helm_binary: Path, work: Work,
                        renderer: Renderer | None = None) -> tuple[dict[str, AppSpec], Renderer, ConfigRepo, str]:
    repo = ConfigRepo(RepoSpec(url=work.url), tmp_path / "git-cache")
    await repo.fetch()
    head = repo.head
    assert head is not None
    tree = await repo.materialize(head.sha)
    clusters = [ClusterSpec("staging"), ClusterSpec("production")]
    parents = discover_imported_apps(tree, clusters, argocd=False, flux=True)
    renderer = renderer or Renderer(helm=str(helm_binary))

    async def objects(app: AppSpec, path: str) -> Sequence[Mapping[str, Any]]:
        return (await renderer.render_app(repo, head.sha, path=path, namespace=app.namespace,
                                          helm=app.helm_options())).objects

    releases = await discover_releases(parents, clusters, objects)
    return {a.name: a for a in releases}, renderer, repo, head.sha


async def test_flux_example_renders_like_helm_template(tmp_path: Path, helm_binary: Path, helm_home: Path,
                                                       chart_cache: Path, chart_repo_server: HelmRepoServer,
                                                       registry: OCIRegistry) -> None:
    """The Flux example layout: staging podinfo (HelmRepository, range ``>=1.0.0-alpha``, staging values
    patched in by kustomize) and cert-manager (OCIRepository ``1.x`` through chartRef) render object by object
    as ``helm template`` renders the same chart with the same values; only the named URLs are fetched; the
    Kustomizations keep the HelmRelease and source objects."""
    work = corpus_repo(tmp_path, chart_repo_server.url, registry.host)
    pushed = len(registry.requests)
    apps, renderer, repo, sha = await render_corpus(tmp_path, helm_binary, work)
    assert sorted(apps) == ["cert-manager.cert-manager", "envoy-gateway-system.envoy-gateway", "podinfo.podinfo"]
    podinfo = apps["podinfo.podinfo"]
    assert podinfo.path == "apps/{cluster}" and podinfo.namespace == "podinfo"

    staging = await renderer.render_app(repo, sha, path="apps/staging", namespace="podinfo",
                                        helm=podinfo.helm_options(), release=podinfo.release)
    values = yaml.safe_load((CORPUS / "apps/base/podinfo/release.yaml").read_text())["spec"]["values"]
    values["httpRoute"]["hostnames"] = ["podinfo.staging"]  # the staging patch (a merge patch: lists replaced)
    chart = chart_repo_server.directory / "podinfo-7.0.0-rc.1.tgz"  # >=1.0.0-alpha admits the pre-release
    expected = helm_template(helm_binary, helm_home, chart, "podinfo", "podinfo", values, "--include-crds")
    assert by_key(staging.objects) == expected
    assert sorted(expected) == [("Deployment", "podinfo"), ("Deployment", "podinfo-redis"),
                                ("HTTPRoute", "podinfo"), ("Service", "podinfo")]
    assert chart_repo_server.requests == ["/index.yaml", "/podinfo-7.0.0-rc.1.tgz"]

    cert_manager = apps["cert-manager.cert-manager"]
    assert cert_manager.path == "infrastructure/controllers" and cert_manager.clusters == ("production", "staging")
    rendered = await renderer.render_app(repo, sha, path=cert_manager.path, namespace=cert_manager.namespace,
                                         helm=cert_manager.helm_options(), release=cert_manager.release)
    fetched = registry.requests[pushed:]
    assert fetched == ["GET /v2/charts/cert-manager/tags/list", "GET /v2/charts/cert-manager/manifests/1.17.0",
                       f"GET /v2/charts/cert-manager/blobs/{_layer(registry, '1.17.0')}"]
    pulled = tmp_path / "pulled"
    pulled.mkdir()
    run_helm(helm_binary, helm_home, "pull", f"oci://{registry.host}/charts/cert-manager", "--version", "1.17.0",
             "--plain-http", "-d", str(pulled))
    cm_values = {"crds": {"enabled": True, "keep": False}, "config": {"enableGatewayAPI": True}}
    expected = helm_template(helm_binary, helm_home, pulled / "cert-manager-1.17.0.tgz", "cert-manager",
                             "cert-manager", cm_values, "--include-crds")
    assert by_key(rendered.objects) == expected
    assert ("CustomResourceDefinition", "certificates.cert-manager.io") in expected
    assert ("CustomResourceDefinition", "legacyissuers.cert-manager.io") in expected  # crds/, install.crds Create
    assert any("upgrade.crds Skip" in w for w in rendered.warnings)
    assert not any("upgrade.crds" in w for w in staging.warnings)  # podinfo has no CRDs

    parent = await renderer.render_app(repo, sha, path="infrastructure/controllers", namespace="",
                                       helm=AppSpec(name="infra-controllers", path="", namespace="").helm_options())
    kinds = {(o["kind"], o["metadata"]["name"]) for o in parent.objects}
    assert {("HelmRelease", "cert-manager"), ("OCIRepository", "cert-manager")} <= kinds
    assert not any(o["kind"] == "Deployment" for o in parent.objects)

    for directory, _dirs, files in os.walk(chart_cache):
        assert os.stat(directory).st_mode & 0o777 == 0o700, directory
        for name in files:
            assert os.stat(Path(directory, name)).st_mode & 0o777 == 0o600, name


def _layer(registry: OCIRegistry, tag: str) -> str:
    manifest = json.loads(registry.manifests["charts/cert-manager"][tag])
    return str(manifest["layers"][0]["digest"])


async def test_cached_chart_is_not_downloaded_again(tmp_path: Path, helm_binary: Path, chart_cache: Path,
                                                    chart_repo_server: HelmRepoServer, registry: OCIRegistry) -> None:
    """A second engine (a new Renderer) reads the index again but takes the chart from the private cache."""
    work = corpus_repo(tmp_path, chart_repo_server.url, registry.host)
    apps, renderer, repo, sha = await render_corpus(tmp_path, helm_binary, work)
    podinfo = apps["podinfo.podinfo"]
    first = await renderer.render_app(repo, sha, path="apps/staging", namespace="podinfo",
                                      helm=podinfo.helm_options(), release=podinfo.release)
    again = Renderer(helm=str(helm_binary))
    second = await again.render_app(repo, sha, path="apps/staging", namespace="podinfo",
                                    helm=podinfo.helm_options(), release=podinfo.release)
    assert second.digest == first.digest
    assert chart_repo_server.requests == ["/index.yaml", "/podinfo-7.0.0-rc.1.tgz", "/index.yaml"]


async def test_unreachable_repository_is_a_per_app_error_retried_later(
        tmp_path: Path, helm_binary: Path, chart_cache: Path, chart_repo_server: HelmRepoServer,
        registry: OCIRegistry) -> None:
    """An unreachable repository fails the HelmRelease app with the URL and what to do (never an empty
    desired state); the failure is not cached: once the URL answers, the next render works."""
    dead = closed_port_url()
    work = corpus_repo(tmp_path, dead, registry.host)
    apps, renderer, repo, sha = await render_corpus(tmp_path, helm_binary, work)
    podinfo = apps["podinfo.podinfo"]
    with pytest.raises(ChartSourceError, match=rf"chart repository {dead} unreachable: .*Connection refused"):
        await renderer.render_app(repo, sha, path="apps/staging", namespace="podinfo",
                                  helm=podinfo.helm_options(), release=podinfo.release)
    cert_manager = apps["cert-manager.cert-manager"]  # other HelmReleases are not affected
    assert (await renderer.render_app(repo, sha, path=cert_manager.path, namespace="cert-manager",
                                      helm=cert_manager.helm_options(), release=cert_manager.release)).objects
    # the same URL reachable now (a server started on that port would do; here: the tests' repository)
    text = (work.dir / "apps/base/podinfo/repository.yaml").read_text()
    sha2 = work.commit({"apps/base/podinfo/repository.yaml": text.replace(dead, chart_repo_server.url)}, "fix url")
    await repo.fetch()
    ok = await renderer.render_app(repo, sha2, path="apps/staging", namespace="podinfo",
                                   helm=podinfo.helm_options(), release=podinfo.release)
    assert ("Deployment", "podinfo") in by_key(ok.objects)


def test_digest_mismatch_and_missing_version_are_refused(tmp_path: Path, helm_binary: Path,
                                                          chart_repo_server: HelmRepoServer) -> None:
    """A chart whose bytes differ from the index's digest is not used; no matching version says which exist."""
    cache = tmp_path / "c"
    with pytest.raises(ChartSourceError, match=r"no version of chart 'podinfo' .* matches '9.x' \(has 6.0.0, 6.5.1"):
        fetch_chart(ChartRequest(chart_repo_server.url, chart="podinfo", version="9.x"), timeout=10,
                    max_bytes=1 << 20, cache=cache)
    archive = chart_repo_server.directory / "podinfo-6.5.1.tgz"
    archive.write_bytes(archive.read_bytes() + b"\0")
    with pytest.raises(ChartSourceError, match=r"podinfo-6.5.1.tgz has digest sha256:\w+, the index .* says"):
        fetch_chart(ChartRequest(chart_repo_server.url, chart="podinfo", version="~6.5"), timeout=10,
                    max_bytes=1 << 20, cache=cache)
    with pytest.raises(ChartSourceError, match=r"over the 100-byte limit"):
        fetch_chart(ChartRequest(chart_repo_server.url, chart="podinfo", version="6.0.0"), timeout=10,
                    max_bytes=100, cache=cache)
    assert not any(cache.glob("*/meta.json"))


async def test_chart_from_the_config_repo_git_repository(tmp_path: Path, helm_binary: Path, helm_home: Path) -> None:
    """A HelmRelease whose chart is a directory of the config repo (the bootstrap GitRepository) renders
    that directory, with its values, as helm template does; nothing is fetched."""
    work = Work(tmp_path)
    chart = podinfo_chart(tmp_path / "src", "1.2.3")
    files = {f"charts/podinfo/{p.relative_to(chart).as_posix()}": p.read_text() for p in chart.rglob("*")
             if p.is_file()}
    release = hr({"chart": {"spec": {"chart": "./charts/podinfo", "sourceRef": {
        "kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"}}},
        "targetNamespace": "web-prod", "values": {"replicaCount": 2}}, "web", "apps")
    files["apps/release.yaml"] = yaml.safe_dump(release)
    files["clusters/one/apps.yaml"] = yaml.safe_dump({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": "flux-system"},
        "spec": {"path": "./apps", "prune": True, "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}})
    work.commit(files, "git chart")
    repo = ConfigRepo(RepoSpec(url=work.url), tmp_path / "git-cache")
    await repo.fetch()
    assert repo.head is not None
    sha = repo.head.sha
    tree = await repo.materialize(sha)
    clusters = [ClusterSpec("one")]
    renderer = Renderer(helm=str(helm_binary))

    async def objects(app: AppSpec, path: str) -> Sequence[Mapping[str, Any]]:
        return (await renderer.render_app(repo, sha, path=path, namespace=app.namespace,
                                          helm=app.helm_options())).objects

    (app,) = await discover_releases(discover_imported_apps(tree, clusters, argocd=False), clusters, objects)
    assert (app.name, app.namespace, app.clusters) == ("apps.web", "web-prod", ("one",))
    result = await renderer.render_app(repo, sha, path=app.path, namespace=app.namespace, helm=app.helm_options(),
                                       release=app.release)
    expected = helm_template(helm_binary, helm_home, Path(tree) / "charts/podinfo", "web-prod-web", "web-prod",
                             {"replicaCount": 2}, "--include-crds")
    assert by_key(result.objects) == expected
    assert expected[("Deployment", "web-prod-web")]["spec"]["replicas"] == 2


def test_helm_pull_works_against_the_test_registry(tmp_path: Path, helm_binary: Path, helm_home: Path,
                                                   registry: OCIRegistry) -> None:
    """The fixture registry speaks enough of the distribution API for the real helm (push in the fixture,
    pull here)."""
    out = tmp_path / "out"
    out.mkdir()
    run_helm(helm_binary, helm_home, "pull", f"oci://{registry.host}/charts/cert-manager", "--version", "2.0.0",
             "--plain-http", "-d", str(out))
    listing = subprocess.run(["tar", "tzf", str(out / "cert-manager-2.0.0.tgz")], capture_output=True, text=True,
                             check=True).stdout
    assert "cert-manager/Chart.yaml" in listing


def test_oci_digest_tag_and_type_oci_repository(tmp_path: Path, helm_binary: Path, registry: OCIRegistry) -> None:
    """``ref.digest`` is checked and, once cached, needs no request; ``ref.tag``; a HelmRepository of type oci
    (repository prefix + chart name); a wrong digest is refused."""
    cache = tmp_path / "c"
    url = f"oci://{registry.host}/charts/cert-manager"
    manifest = registry.manifests["charts/cert-manager"]["1.16.2"]
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    first = fetch_chart(ChartRequest(url, digest=digest, insecure=True), timeout=10, max_bytes=1 << 20, cache=cache)
    assert (first.name, first.version, first.cached) == ("cert-manager", "1.16.2", False)
    asked = len(registry.requests)
    again = fetch_chart(ChartRequest(url, digest=digest, insecure=True), timeout=10, max_bytes=1 << 20, cache=cache)
    assert again.cached and len(registry.requests) == asked
    tagged = fetch_chart(ChartRequest(url, tag="2.0.0", insecure=True), timeout=10, max_bytes=1 << 20, cache=cache)
    assert tagged.version == "2.0.0"
    typed = fetch_chart(ChartRequest(f"oci://{registry.host}/charts", chart="cert-manager", version="~1.16",
                                     insecure=True), timeout=10, max_bytes=1 << 20, cache=cache)
    assert typed.version == "1.16.2"
    wrong = "sha256:" + "0" * 64
    with pytest.raises(ChartSourceError, match=r"HTTP 404"):
        fetch_chart(ChartRequest(url, digest=wrong, insecure=True), timeout=10, max_bytes=1 << 20, cache=cache)


async def test_a_repository_that_never_answers_times_out(tmp_path: Path) -> None:
    """A server that accepts the connection and never answers costs at most the timeout, off the loop."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(ChartSourceError, match=rf"chart repository {url} unreachable: "):
            await fetch(ChartRequest(url, chart="podinfo"), timeout=0.5, max_bytes=1 << 20, cache=tmp_path / "c")


def test_registry_bearer_challenge_and_blob_redirect(tmp_path: Path, helm_binary: Path, registry: OCIRegistry) -> None:
    """A registry answering 401 with a Bearer challenge (as ghcr.io, quay.io and Docker Hub do for public
    charts) gets an anonymous token from the realm once per fetch; the token is not sent to the other host a
    blob download is redirected to."""
    registry.token_required = True
    registry.blob_host = registry.host.replace("127.0.0.1", "localhost")
    fetched = fetch_chart(ChartRequest(f"oci://{registry.host}/charts/cert-manager", version="1.x", insecure=True),
                          timeout=10, max_bytes=1 << 20, cache=tmp_path / "c")
    assert fetched.version == "1.17.0"
    seen = dict(registry.authorization[-6:])
    assert [p for p, _ in registry.authorization[-6:]] == [
        "/v2/charts/cert-manager/tags/list", "/token", "/v2/charts/cert-manager/tags/list",
        "/v2/charts/cert-manager/manifests/1.17.0", f"/v2/charts/cert-manager/blobs/{_layer(registry, '1.17.0')}",
        f"/cdn/{_layer(registry, '1.17.0')}"]
    assert seen["/v2/charts/cert-manager/manifests/1.17.0"] == "Bearer test-token"
    assert seen[f"/cdn/{_layer(registry, '1.17.0')}"] == ""


async def test_source_and_values_in_another_kustomization(tmp_path: Path, helm_binary: Path, helm_home: Path,
                                                          chart_cache: Path,
                                                          chart_repo_server: HelmRepoServer) -> None:
    """The common layout with sources in their own Flux Kustomization (``sources/``, whose ``targetNamespace``
    moves its HelmRepository and values ConfigMap into the release's namespace, as kustomize-controller
    would): the HelmRelease of ``apps/`` renders with them."""
    work = Work(tmp_path)
    kustomization: dict[str, Any] = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                     "metadata": {"namespace": "flux-system"},
                     "spec": {"prune": True, "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}}
    files = {
        "clusters/one/apps.yaml": yaml.safe_dump({**kustomization, "metadata": {"name": "apps"},
                                                  "spec": {**kustomization["spec"], "path": "./apps"}}),
        "clusters/one/sources.yaml": yaml.safe_dump({**kustomization, "metadata": {"name": "sources"},
                                                     "spec": {**kustomization["spec"], "path": "./sources",
                                                              "targetNamespace": "web"}}),
        "sources/repo.yaml": yaml.safe_dump(source("HelmRepository", "podinfo", "flux-system",
                                                   {"url": chart_repo_server.url})),
        "sources/values.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": {"name": "podinfo-values"},
                                               "data": {"values.yaml": "replicaCount: 4\n"}}),
        "apps/release.yaml": yaml.safe_dump(hr({
            "chart": {"spec": {"chart": "podinfo", "version": "~6.0",
                               "sourceRef": {"kind": "HelmRepository", "name": "podinfo", "namespace": "web"}}},
            "valuesFrom": [{"kind": "ConfigMap", "name": "podinfo-values"}]}, "podinfo", "web")),
    }
    work.commit(files, "sources apart")
    repo = ConfigRepo(RepoSpec(url=work.url), tmp_path / "git-cache")
    await repo.fetch()
    assert repo.head is not None
    sha = repo.head.sha
    clusters = [ClusterSpec("one")]
    renderer = Renderer(helm=str(helm_binary))

    async def objects(app: AppSpec, path: str) -> Sequence[Mapping[str, Any]]:
        return (await renderer.render_app(repo, sha, path=path, namespace=app.namespace,
                                          helm=app.helm_options())).objects

    tree = await repo.materialize(sha)
    (app,) = await discover_releases(discover_imported_apps(tree, clusters, argocd=False), clusters, objects)
    result = await renderer.render_app(repo, sha, path=app.path, namespace=app.namespace, helm=app.helm_options(),
                                       release=app.release)
    expected = helm_template(helm_binary, helm_home, chart_repo_server.directory / "podinfo-6.0.0.tgz", "podinfo",
                             "web", {"replicaCount": 4}, "--include-crds")
    assert by_key(result.objects) == expected
