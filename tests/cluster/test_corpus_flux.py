"""Corpus sweep: the Flux example repository (flux2-kustomize-helm-example) copied into a tmp Git repo, one fleet
file importing Flux with clusters ``staging`` (fd-a) and ``production`` (fd-b), and for every app ``status -o
json`` lists the real ``fleetdeck diff`` and ``sync --yes`` against real kube-apiservers. Every app either
syncs, with every object its tool renders (``kubectl kustomize`` of a hand-written overlay, ``helm template`` of
the same chart and values, run here directly) present in the cluster with every rendered field, or says why and
writes nothing (audit log). Two runs: (a) the corpus as it is, offline; (b) the chart URLs rewritten to local
chart servers with stand-in charts, and the bootstrap files Flux would have generated. The results are the
tables in docs/corpus.md (``-s`` prints them)."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.desired.kustomize import kustomize_command
from devcluster import ClusterInfo, audit_events, mutating_events, wait_for_audit_event
from tests.cluster.test_cli import run
from tests.cluster.test_helm_sync import contained
from tests.cluster.test_missing_crds import exists, wait_gone
from tests.engine.conftest import git
from tests.fixtures.chart_servers import (
    CERT_MANAGER_TEMPLATES,
    CERT_MANAGER_VALUES,
    HelmRepoServer,
    OCIRegistry,
    package,
    podinfo_chart,
    run_helm,
    write_chart,
)

pytestmark = pytest.mark.cluster

CORPUS = Path("/work/shared/corpus/flux2-kustomize-helm-example")
CRDS = CORPUS.parent / "crds"
ADMIN = "fleetdeck-admin"
ENVS = ("staging", "production")
"""Fleet cluster names, mapped in this order onto the session clusters fd-a and fd-b."""
NAMESPACES = ("flux-system", "cert-manager", "envoy-gateway-system", "podinfo")
CLUSTER_SCOPED = ("/apis/cert-manager.io/v1/clusterissuers/letsencrypt",
                  "/apis/gateway.networking.k8s.io/v1/gatewayclasses/envoy")
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
ORDER = ("flux-system", "infra-controllers", "cert-manager.cert-manager", "envoy-gateway-system.envoy-gateway",
         "infra-configs", "apps", "podinfo.podinfo")
"""dependsOn order (infra-controllers, its HelmReleases, infra-configs, apps, its HelmRelease)."""


# ---------------------------------------------------------------------------------------------- stand-ins

def _crd(group: str, kind: str, plural: str, version: str, scope: str = "Namespaced") -> str:
    approved = "https://github.com/kubernetes-sigs/gateway-api/pull/3328"  # a *.k8s.io group needs it
    annotations = f", annotations: {{api-approved.kubernetes.io: '{approved}'}}" if group.endswith(".k8s.io") else ""
    return textwrap.dedent(f"""\
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {{name: {plural}.{group}{annotations}}}
        spec:
          group: {group}
          names: {{kind: {kind}, listKind: {kind}List, plural: {plural}, singular: {kind.lower()}}}
          scope: {scope}
          versions:
            - name: {version}
              served: true
              storage: true
              schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}
        """)


CLUSTER_ISSUER_CRD = ("{{- if .Values.crds.enabled }}\n"
                      + _crd("cert-manager.io", "ClusterIssuer", "clusterissuers", "v1", "Cluster")
                      + "{{- end }}\n")
"""Added to the stand-in cert-manager chart: infra-configs' ClusterIssuer needs it (the real chart ships it)."""

GATEWAY_TEMPLATES = {
    "serviceaccount.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: envoy-gateway}\n",
    "deployment.yaml": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: envoy-gateway}
        spec:
          selector: {matchLabels: {app: envoy-gateway}}
          template:
            metadata: {labels: {app: envoy-gateway}}
            spec:
              serviceAccountName: envoy-gateway
              containers: [{name: envoy-gateway, image: "docker.io/envoyproxy/gateway:v{{ .Chart.AppVersion }}"}]
        """,
}
GATEWAY_CRDS = {"gatewayapi-crds.yaml": "---\n".join(
    _crd("gateway.networking.k8s.io", kind, plural, "v1", scope) for kind, plural, scope in (
        ("GatewayClass", "gatewayclasses", "Cluster"), ("Gateway", "gateways", "Namespaced"),
        ("HTTPRoute", "httproutes", "Namespaced")))}
"""The stand-in gateway-helm ships the Gateway API CRDs in ``crds/``, as the real chart does."""

FLUX_CRD_FILES = ("source.toolkit.fluxcd.io_gitrepositories.yaml", "source.toolkit.fluxcd.io_helmrepositories.yaml",
                  "source.toolkit.fluxcd.io_ocirepositories.yaml", "helm.toolkit.fluxcd.io_helmreleases.yaml",
                  "kustomize.toolkit.fluxcd.io_kustomizations.yaml")
CONTROLLERS = ("source-controller", "kustomize-controller", "helm-controller", "source-watcher")


def gotk_components() -> str:
    """What ``flux bootstrap`` writes, reduced: the Namespace, the real Flux CRDs (shared/corpus/crds), a
    stand-in ArtifactGenerator CRD (source-watcher's; not in shared/corpus/crds) and one Deployment per
    controller (the corpus' flux-system patch appends to their first container's args)."""
    docs = ["apiVersion: v1\nkind: Namespace\nmetadata: {name: flux-system}\n"]
    docs += [(CRDS / name).read_text().removeprefix("---\n") for name in FLUX_CRD_FILES]
    docs.append(_crd("source.extensions.fluxcd.io", "ArtifactGenerator", "artifactgenerators", "v1beta1"))
    for name in CONTROLLERS:
        docs.append(textwrap.dedent(f"""\
            apiVersion: apps/v1
            kind: Deployment
            metadata: {{name: {name}, namespace: flux-system, labels: {{app: {name}}}}}
            spec:
              selector: {{matchLabels: {{app: {name}}}}}
              template:
                metadata: {{labels: {{app: {name}}}}}
                spec:
                  containers:
                    - name: manager
                      image: ghcr.io/fluxcd/{name}:v1.0.0
                      args: [--log-level=info]
            """))
    return "---\n".join(docs)


def gotk_sync(env: str) -> str:
    """What ``flux bootstrap`` writes: the config repo's GitRepository and the Kustomization of clusters/ENV."""
    return textwrap.dedent(f"""\
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: GitRepository
        metadata: {{name: flux-system, namespace: flux-system}}
        spec:
          interval: 1m0s
          ref: {{branch: main}}
          url: https://github.com/fluxcd/flux2-kustomize-helm-example
        ---
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {{name: flux-system, namespace: flux-system}}
        spec:
          interval: 10m0s
          path: ./clusters/{env}
          prune: true
          sourceRef: {{kind: GitRepository, name: flux-system}}
        """)


# ---------------------------------------------------------------------------------------------- the sweep

@dataclass
class Sweep:
    tmp: Path
    repo: Path
    fleet: Path
    clusters: dict[str, ClusterInfo]
    env: dict[str, str]
    rows: list[str] = field(default_factory=list)
    windows: list[tuple[str, str, dt.datetime, dt.datetime]] = field(default_factory=list)
    """Blocked syncs: (app, cluster, start, end); checked for writes once the audit log has caught up."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Each app's ``sync --all-clusters`` (both clusters, engine start included)."""

    def cli(self, *words: str) -> subprocess.CompletedProcess[str]:
        result = run(self.tmp, *words, "--fleet", str(self.fleet), env=self.env)
        assert "Traceback" not in result.stderr, result.stdout + result.stderr
        return result

    def status(self) -> dict[tuple[str, str], dict[str, Any]]:
        result = self.cli("status", "-o", "json")
        assert result.returncode in (0, 1, 2), result.stdout + result.stderr
        return {(r["app"], r["cluster"]): r for r in json.loads(result.stdout)["apps"]}


def copy_corpus(tmp: Path) -> Path:
    repo = tmp / "repo"
    shutil.copytree(CORPUS, repo, ignore=shutil.ignore_patterns(".git"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "flux2-kustomize-helm-example")
    return repo


def fleet_file(tmp: Path, repo: Path, clusters: list[ClusterInfo]) -> Path:
    path = tmp / "fleetdeck.yaml"
    path.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main", "interval": 3600},
        "import": {"flux": True},
        "clusters": [{"name": env, "kubeconfig": str(c.kubeconfig), "context": c.admin_context}
                     for env, c in zip(ENVS, clusters, strict=True)],
        "apps": [],
    }))
    return path


def family(app: str) -> str:
    """``infra-configs-staging`` → ``infra-configs`` (the importer suffixes same-named Kustomizations whose
    specs differ between clusters)."""
    for env in ENVS:
        if app.endswith(f"-{env}") and app.removesuffix(f"-{env}") in ORDER:
            return app.removesuffix(f"-{env}")
    return app


def reason(output: str) -> str:
    """The plan's ``blocked:`` line, else its last line (a server dry run's refusal)."""
    lines = [x.strip() for x in output.splitlines() if x.strip().startswith("blocked:")]
    return lines[0].removeprefix("blocked: ") if lines else output.strip().splitlines()[-1].strip()


def clean(clusters: list[ClusterInfo], *, wait: bool = True) -> None:
    """Remove what the corpus creates (cluster-wide names) from both clusters (waiting until it is gone)."""
    for cluster in clusters:
        rest = cluster.rest()
        for path in CLUSTER_SCOPED:
            if not exists(rest, path.rsplit("/", 2)[0]):
                continue
            rest.delete(path)
        for ns in NAMESPACES:
            rest.delete(f"/api/v1/namespaces/{ns}")
        crds = [c["metadata"]["name"] for c in rest.get(CRD_PATH)["items"]
                if c["spec"]["group"].endswith(("fluxcd.io", "cert-manager.io", "gateway.networking.k8s.io"))]
        for name in crds:
            rest.delete(f"{CRD_PATH}/{name}")
        if not wait:
            continue
        for ns in NAMESPACES:
            wait_gone(rest, f"/api/v1/namespaces/{ns}")
        for name in crds:
            wait_gone(rest, f"{CRD_PATH}/{name}")


@pytest.fixture
def corpus_clusters(clusters: list[ClusterInfo]) -> Iterator[list[ClusterInfo]]:
    if not (CORPUS / "clusters").is_dir():
        pytest.skip(f"corpus not available: {CORPUS}")
    clean(clusters)
    yield clusters
    clean(clusters, wait=False)  # the next user waits (this fixture's setup, test_missing_crds.remove_flux)


def writes(cluster: ClusterInfo, since: dt.datetime, until: dt.datetime) -> list[tuple[str, str]]:
    return [(e["verb"], e.get("requestURI", "")) for e in mutating_events(audit_events(cluster, since=since),
                                                                         user=ADMIN)
            if "dryRun" not in e.get("requestURI", "")
            and dt.datetime.fromisoformat(e["requestReceivedTimestamp"].replace("Z", "+00:00")) <= until]


def caught_up(cluster: ClusterInfo, since: dt.datetime) -> None:
    """Every request made before now is in the audit log (a marker GET made last is)."""
    marker = "audit-marker-corpus-flux"
    assert not exists(cluster.rest(), f"/api/v1/namespaces/default/configmaps/{marker}")
    wait_for_audit_event(cluster, lambda e: (e.get("objectRef") or {}).get("name") == marker, since=since, timeout=20)


def check_blocked_wrote_nothing(sweep: Sweep, started: dt.datetime) -> None:
    for cluster in sweep.clusters.values():
        caught_up(cluster, started)
    for app, env, since, until in sweep.windows:
        assert writes(sweep.clusters[env], since, until) == [], (app, env)


def sections(app: str, stdout: str) -> dict[str, str]:
    """``sync APP --all-clusters`` output split per cluster (each plan starts ``sync APP on CLUSTER to …``)."""
    out: dict[str, str] = {}
    current = ""
    for line in stdout.splitlines():
        match = re.match(rf"^sync {re.escape(app)} on (\S+) to ", line)
        if match:
            current = match.group(1)
        if current:
            out[current] = out.get(current, "") + line + "\n"
    return out


def sync_all(sweep: Sweep, before: dict[tuple[str, str], dict[str, Any]],
             expected: Mapping[tuple[str, str], list[dict[str, Any]]]) -> dict[tuple[str, str], str]:
    """diff and sync every app (on every cluster it targets) in dependsOn order; the outcome per (app, cluster).
    A synced app's rendered objects are all in its cluster, every rendered field as rendered."""
    outcome: dict[tuple[str, str], str] = {}
    apps = sorted({app for app, _ in before}, key=lambda a: (ORDER.index(family(a)), a))
    for app in apps:
        envs = [env for env in ENVS if (app, env) in before]
        diff = sweep.cli("diff", app)
        assert diff.returncode in (1, 2), diff.stdout + diff.stderr
        since = dt.datetime.now(dt.UTC)
        started = time.monotonic()
        synced = sweep.cli("sync", app, "--all-clusters", "--yes")
        seconds = time.monotonic() - started
        until = dt.datetime.now(dt.UTC)
        output = synced.stdout + synced.stderr
        assert synced.returncode in (0, 1, 2), output
        parts = sections(app, synced.stdout)
        assert sorted(parts) == sorted(envs), output
        for env in envs:
            if "nothing was changed" in parts[env]:  # blocked, or refused by the server's dry run
                sweep.windows.append((app, env, since, until))
                outcome[app, env] = f"blocked: {reason(parts[env])}"
                continue
            assert synced.returncode == 0, output
            want = expected[app, env]
            assert want, (app, env, output)
            live = live_objects(sweep.clusters[env], want, before[app, env]["namespace"])
            problems = [f"{o['kind']}/{o['metadata']['name']}{p}" for o, have in zip(want, live, strict=True)
                        for p in contained(o, have)]
            assert problems == [], (app, env, problems[:10], output)
            outcome[app, env] = "synced"
        sweep.seconds[app] = seconds
    return outcome


def live_objects(cluster: ClusterInfo, objects: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """``kubectl get -f`` of the rendered objects: the live ones, in the same order."""
    kubectl = kustomize_command()[0]
    listed = subprocess.run([kubectl, "--kubeconfig", str(cluster.kubeconfig), "--context", cluster.admin_context,
                             "get", "-n", namespace, "-f", "-", "-o", "json"], input=yaml.safe_dump_all(objects),
                            capture_output=True, text=True, timeout=60, check=True).stdout
    document = json.loads(listed)
    items: list[dict[str, Any]] = document["items"] if document.get("kind") == "List" else [document]
    assert len(items) == len(objects)
    return items


# ---------------------------------------------------------------------------------------------- expected

def kustomized(directory: Path) -> list[dict[str, Any]]:
    out = subprocess.run([*kustomize_command(), str(directory)], check=True, capture_output=True, timeout=60,
                         env={"HOME": str(directory), "PATH": ""}).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def overlays(repo: Path, hand: Path, env: str) -> dict[str, list[dict[str, Any]]]:
    """Each Kustomization of clusters/ENV as a reader writes it by hand: an overlay of its path with the
    object's fields (infra-configs' JSON6902 patch), built by ``kubectl kustomize``."""
    copy = hand / env / "repo"
    shutil.copytree(repo, copy, ignore=shutil.ignore_patterns(".git"))
    server = "https://acme-staging-v02.api.letsencrypt.org/directory" if env == "staging" else \
        "https://acme-v02.api.letsencrypt.org/directory"
    layers = {
        "infra-controllers": "resources: [../../repo/infrastructure/controllers]\n",
        "infra-configs": textwrap.dedent(f"""\
            resources: [../../repo/infrastructure/configs]
            patches:
              - patch: |
                  - op: replace
                    path: /spec/acme/server
                    value: {server}
                target: {{kind: ClusterIssuer, name: letsencrypt}}
            """),
        "apps": f"resources: [../../repo/apps/{env}]\n",
    }
    built = {}
    for name, text in layers.items():
        (hand / env / "overlays" / name).mkdir(parents=True)
        (hand / env / "overlays" / name / "kustomization.yaml").write_text(text)
        built[name] = kustomized(hand / env / "overlays" / name)
    if (copy / "clusters" / env / "flux-system" / "gotk-sync.yaml").read_text().strip().startswith("#"):
        return built  # the corpus' bootstrap placeholder: no flux-system Kustomization
    # Flux's generated kustomization of clusters/ENV: its YAML files and the flux-system kustomization
    (copy / "clusters" / env / "kustomization.yaml").write_text(
        "resources: [apps.yaml, artifacts.yaml, infrastructure.yaml, flux-system]\n")
    built["flux-system"] = kustomized(copy / "clusters" / env)
    return built


def release_values(repo: Path, env: str) -> dict[str, dict[str, Any]]:
    """Each HelmRelease's values as kustomize-controller applies them (the apps overlay's merge patch)."""
    out: dict[str, dict[str, Any]] = {}
    for doc in kustomized(repo / "apps" / env) + kustomized(repo / "infrastructure" / "controllers"):
        if doc["kind"] == "HelmRelease":
            out[doc["metadata"]["name"]] = doc["spec"].get("values") or {}
    return out


# ---------------------------------------------------------------------------------------------- run (a)

def test_flux_example_as_it_is_offline(tmp_path: Path, corpus_clusters: list[ClusterInfo],
                                      helm_binary: Path) -> None:
    """The corpus unchanged, no network: the HelmRelease apps say their chart URL is unreachable; the
    Kustomization apps are blocked on Flux kinds the clusters do not serve (the corpus' gotk-components.yaml is
    the bootstrap placeholder, so nothing installs the Flux CRDs); no app writes anything (audit log)."""
    repo = copy_corpus(tmp_path)
    sweep = Sweep(tmp_path, repo, fleet_file(tmp_path, repo, corpus_clusters), dict(zip(ENVS, corpus_clusters,
                                                                                         strict=True)),
                  {"FLEETDECK_HELM": str(helm_binary)})
    started = dt.datetime.now(dt.UTC)
    before = sweep.status()
    apps = {app for app, _ in before}
    assert {family(a) for a in apps} == set(ORDER) - {"flux-system"}, sorted(apps)
    for (app, _env), row in before.items():
        if "." in app:
            assert row["sync"] == "Unknown" and "unreachable" in json.dumps(row["conditions"]), row
    expected = {(app, env): objs for env in ENVS for name, objs in overlays(repo, tmp_path / "hand", env).items()
                for app in apps if family(app) == name and (app, env) in before}
    outcome = sync_all(sweep, before, {})
    check_blocked_wrote_nothing(sweep, started)
    for (app, env), text in sorted(outcome.items(), key=lambda kv: (ORDER.index(family(kv[0][0])), kv[0])):
        assert text.startswith("blocked"), (app, env, text)
        assert ("unreachable" if "." in app else "not served") in text, text
        sweep.rows.append(f"| {app} | {env} | {kinds(expected.get((app, env)))} | blocked, nothing written "
                          f"({sweep.seconds[app]:.1f} s both) | {text.removeprefix('blocked: ')} |")
    print("\n".join(sweep.rows))


def kinds(objects: list[dict[str, Any]] | None) -> str:
    """``6 (HelmRelease, Namespace, OCIRepository)``; ``chart not fetched`` when there is nothing rendered."""
    if not objects:
        return "chart not fetched"
    return f"{len(objects)} ({', '.join(sorted({o['kind'] for o in objects}))})"


# ---------------------------------------------------------------------------------------------- run (b)

def local_charts(repo: Path, http_url: str, oci_host: str, env: str) -> None:
    """The chart URLs rewritten to the local servers (OCI over plain HTTP: ``insecure: true``), and the
    bootstrap files ``flux bootstrap`` would have generated in clusters/ENV/flux-system."""
    repository = repo / "apps/base/podinfo/repository.yaml"
    repository.write_text(repository.read_text().replace("https://stefanprodan.github.io/podinfo", http_url))
    for name, official, url in (
            ("cert-manager.yaml", "oci://quay.io/jetstack/charts/cert-manager", f"oci://{oci_host}/charts/cert-manager"),
            ("envoy-gateway.yaml", "oci://docker.io/envoyproxy/gateway-helm", f"oci://{oci_host}/gw/gateway-helm")):
        file = repo / "infrastructure/controllers" / name
        file.write_text(file.read_text().replace(f"url: {official}", f"url: {url}\n  insecure: true"))
    (repo / "clusters" / env / "flux-system" / "gotk-components.yaml").write_text(gotk_components())
    (repo / "clusters" / env / "flux-system" / "gotk-sync.yaml").write_text(gotk_sync(env))


def chart_servers(tmp: Path, helm: Path, stack: ExitStack) -> tuple[HelmRepoServer, OCIRegistry, dict[str, Path]]:
    """podinfo 6.5.1 and 7.0.0-rc.1 on an HTTP repository; cert-manager 1.17.0 (with a ClusterIssuer CRD) and
    gateway-helm 1.8.0 (Gateway API CRDs in crds/) in an OCI registry. The chart directories by name."""
    home = tmp / "helm-home"
    http_repo = HelmRepoServer(tmp / "served")
    http_repo.directory.mkdir()
    stack.enter_context(http_repo.running())
    charts = {f"podinfo-{v}": podinfo_chart(tmp / "src", v) for v in ("6.5.1", "7.0.0-rc.1")}
    http_repo.publish(helm, home, list(charts.values()))
    registry = OCIRegistry()
    stack.enter_context(registry.running())
    charts["cert-manager"] = write_chart(tmp / "src" / "cm", "cert-manager", "1.17.0",
                                         {**CERT_MANAGER_TEMPLATES, "clusterissuer-crd.yaml": CLUSTER_ISSUER_CRD},
                                         CERT_MANAGER_VALUES, app_version="1.17.0")
    charts["gateway-helm"] = write_chart(tmp / "src" / "gw", "gateway-helm", "1.8.0", GATEWAY_TEMPLATES, "{}\n",
                                         crds=GATEWAY_CRDS)
    registry.push(helm, home, package(helm, home, charts["cert-manager"], tmp / "pk"), "charts")
    registry.push(helm, home, package(helm, home, charts["gateway-helm"], tmp / "pk"), "gw")
    return http_repo, registry, charts


def helm_template(helm: Path, home: Path, chart: Path, release: str, namespace: str,
                  values: Mapping[str, Any]) -> list[dict[str, Any]]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "values.json").write_text(json.dumps(values))
    out = run_helm(helm, home, "template", release, str(chart), "--namespace", namespace, "--values",
                   str(home / "values.json"), "--skip-tests", "--include-crds")
    return [d for d in yaml.safe_load_all(out) if d]


def test_flux_example_with_local_chart_servers(tmp_path: Path, corpus_clusters: list[ClusterInfo],
                                              helm_binary: Path) -> None:
    """The chart URLs rewritten to local servers with stand-in charts and the bootstrap files written: every
    app syncs in dependsOn order (flux-system installs the Flux CRDs, the HelmRelease apps the cert-manager and
    Gateway API CRDs that infra-configs and podinfo need), each holds in its cluster what kubectl kustomize or
    helm template renders, and status says Synced for every row."""
    with ExitStack() as stack:
        http_repo, registry, charts = chart_servers(tmp_path, helm_binary, stack)
        repo = copy_corpus(tmp_path)
        for env in ENVS:
            local_charts(repo, http_repo.url, registry.host, env)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "local chart servers, bootstrap files")
        sweep = Sweep(tmp_path, repo, fleet_file(tmp_path, repo, corpus_clusters),
                      dict(zip(ENVS, corpus_clusters, strict=True)), {"FLEETDECK_HELM": str(helm_binary)})
        before = sweep.status()
        apps = {app for app, _ in before}
        assert {family(a) for a in apps} == set(ORDER), sorted(apps)
        expected: dict[tuple[str, str], list[dict[str, Any]]] = {}
        home = tmp_path / "direct"
        for env in ENVS:
            for name, objs in overlays(repo, tmp_path / "hand", env).items():
                expected.update({(app, env): objs for app in apps if family(app) == name and (app, env) in before})
            values = release_values(repo, env)
            podinfo = charts["podinfo-7.0.0-rc.1" if env == "staging" else "podinfo-6.5.1"]  # >=1.0.0-alpha, >=1.0.0
            expected["podinfo.podinfo", env] = helm_template(helm_binary, home, podinfo, "podinfo", "podinfo",
                                                             values["podinfo"])
            expected["cert-manager.cert-manager", env] = helm_template(
                helm_binary, home, charts["cert-manager"], "cert-manager", "cert-manager", values["cert-manager"])
            expected["envoy-gateway-system.envoy-gateway", env] = helm_template(
                helm_binary, home, charts["gateway-helm"], "envoy-gateway", "envoy-gateway-system", {})
        started = dt.datetime.now(dt.UTC)
        # Out of order first (dependsOn is not enforced): infra-configs before the charts that define its kinds
        early = sweep.cli("sync", "infra-configs-staging", "--yes")
        sweep.windows.append(("infra-configs-staging", "staging", started, dt.datetime.now(dt.UTC)))
        assert early.returncode == 2 and "nothing was changed" in early.stdout, early.stdout + early.stderr
        out_of_order = reason(early.stdout)
        assert "not served" in out_of_order, early.stdout
        outcome = sync_all(sweep, before, expected)
        check_blocked_wrote_nothing(sweep, started)
        after = sweep.status()
        ready = {env: [(d["status"].get("readyReplicas", 0), d["spec"]["replicas"]) for d in (
            c.rest().get(f"/apis/apps/v1/namespaces/flux-system/deployments/{name}") for name in CONTROLLERS)]
            for env, c in sweep.clusters.items()}
    for (app, env), text in sorted(outcome.items(), key=lambda kv: (ORDER.index(family(kv[0][0])), kv[0])):
        row = after[app, env]
        sweep.rows.append(f"| {app} | {env} | {kinds(expected.get((app, env)))} | {text} "
                          f"({sweep.seconds[app]:.1f} s both), {row['sync']}, {row['health']['status']} | "
                          f"{row['health']['message']} |")
    sweep.rows.append(f"Flux controller Deployments ready (readyReplicas, replicas): {ready}")
    sweep.rows.append(f"| infra-configs-staging, synced first (out of order) | staging | 3 | blocked, nothing "
                      f"written | {out_of_order} |")
    print("\n".join(sweep.rows))
    assert all(text == "synced" for text in outcome.values()), outcome
    assert all(after[key]["sync"] == "Synced" for key in outcome), {k: after[k]["sync"] for k in outcome}
