"""Controller mode against the REAL Flux controllers: an app owned by a Flux Kustomization, driven through the
real ``fleetdeck`` command line.

source-controller and kustomize-controller (built by scripts/build-flux) run on a lone kube-apiserver
(``flux_plane``); the config repo is served over Git's smart HTTP on 127.0.0.1 and is also fleetdeck's config
repo (its bare path). The Kustomization is in the repo (``clusters/fd-flux/``, so fleetdeck imports it as the
app) and in the cluster; its interval is 10 minutes, so anything that happens within a test happened because
fleetdeck asked for it.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from devcluster import audit_events, mutating_events
from devcluster.api import RestClient
from devcluster.flux import FluxInfo
from devcluster.manifests import namespace as namespace_object
from tests.cluster.test_cli import run
from tests.cluster.test_flux_controllers import configmap, get_or_none, wait_for
from tests.fixtures.chart_servers import HelmRepoServer, write_chart
from tests.fixtures.git_http import GitRepoServer, git_repo_server

pytestmark = pytest.mark.cluster

INTERVAL = "10m"
SOURCE_PLURAL = "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/gitrepositories/{name}"
KS_PLURAL = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{ns}/kustomizations/{name}"


def kustomization(ns: str) -> dict[str, Any]:
    return {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": ns, "namespace": ns},
            "spec": {"interval": INTERVAL, "path": "./apps/web", "prune": True, "wait": False, "timeout": "1m",
                     "targetNamespace": ns, "sourceRef": {"kind": "GitRepository", "name": ns}}}


class FluxApp:
    """One test's app: its namespace (= app name = Kustomization = GitRepository), Git server and fleet file."""

    def __init__(self, flux: FluxInfo, git: GitRepoServer, tmp: Path, ns: str) -> None:
        self.flux, self.git, self.tmp, self.ns = flux, git, tmp, ns
        self.rest: RestClient = flux.cluster.rest()
        self.fleet = tmp / "fleetdeck.yaml"

    def source(self) -> dict[str, Any]:
        obj: dict[str, Any] = self.rest.get(SOURCE_PLURAL.format(ns=self.ns, name=self.ns))
        return obj

    def ks(self) -> dict[str, Any]:
        obj: dict[str, Any] = self.rest.get(KS_PLURAL.format(ns=self.ns, name=self.ns))
        return obj

    def colour(self) -> str | None:
        cm = get_or_none(self.rest, f"/api/v1/namespaces/{self.ns}/configmaps/settings")
        return None if cm is None else str(cm["data"]["colour"])

    def applied(self) -> str:
        return str((self.ks().get("status") or {}).get("lastAppliedRevision") or "")

    def commit(self, colour: str, message: str) -> str:
        return self.git.commit({"apps/web/settings.yaml": configmap("settings", colour=colour)}, message)

    def cli(self, *args: str) -> Any:
        return run(self.tmp, *args, "--fleet", str(self.fleet))

    def row(self) -> dict[str, Any]:
        result = self.cli("status", "-o", "json")
        assert result.returncode in (0, 1), result.stdout + result.stderr
        rows = [r for r in json.loads(result.stdout)["apps"] if r["app"] == self.ns]
        assert len(rows) == 1, result.stdout
        row: dict[str, Any] = rows[0]
        return row

    def journal(self) -> list[dict[str, Any]]:
        path = self.tmp / "journal.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


@pytest.fixture
def app(flux_plane: FluxInfo, tmp_path: Path) -> Iterator[FluxApp]:
    """Commit 1 applied by Flux (ConfigMap ``settings`` colour=blue, a Service), the fleet file written."""
    ns = f"fx-{secrets.token_hex(3)}"
    rest = flux_plane.cluster.rest()
    rest.request("POST", "/api/v1/namespaces", body=namespace_object(ns))
    with git_repo_server(tmp_path / "git") as git:
        state = FluxApp(flux_plane, git, tmp_path, ns)
        git.commit({
            "apps/web/settings.yaml": configmap("settings", colour="blue"),
            "apps/web/service.yaml": textwrap.dedent("""\
                apiVersion: v1
                kind: Service
                metadata: {name: web}
                spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
                """),
            f"clusters/{flux_plane.cluster.name}/web.yaml": yaml.safe_dump(kustomization(ns)),
        }, "first")
        source = {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                  "metadata": {"name": ns, "namespace": ns},
                  "spec": {"url": git.url, "interval": INTERVAL, "ref": {"branch": "main"}, "timeout": "30s"}}
        rest.request("POST", f"/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/gitrepositories", body=source)
        rest.request("POST", f"/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{ns}/kustomizations",
                     body=kustomization(ns))
        wait_for("Flux applied the first commit", lambda: state.colour() == "blue")
        state.fleet.write_text(yaml.safe_dump({
            "repo": {"url": str(git.bare), "branch": "main", "interval": 3600},
            "clusters": [{"name": flux_plane.cluster.name, "kubeconfig": str(flux_plane.cluster.kubeconfig),
                          "context": flux_plane.cluster.admin_context}],
            "import": {"flux": True},
            "apps": [],
        }))
        yield state
    rest.delete(f"/api/v1/namespaces/{ns}")


def flux_writes(flux: FluxInfo, since: dt.datetime) -> list[tuple[str, str, str]]:
    """(verb, resource, name) of fleetdeck-admin's writes to Flux objects since ``since`` (the Lease aside)."""
    events = mutating_events(audit_events(flux.cluster, since=since), user="fleetdeck-admin")
    return [(e["verb"], e["objectRef"]["resource"], e["objectRef"].get("name", "")) for e in events
            if e["objectRef"].get("apiGroup", "").endswith("toolkit.fluxcd.io")]


def test_status_shows_the_flux_owner_and_its_status(app: FluxApp) -> None:
    """The row's owner is flux, with the Kustomization's and the GitRepository's status."""
    row = wait_for("the Flux row", lambda: (r := app.row())["flux"] and r)
    assert row["owner"] == "flux"
    assert row["owner_object"]["kind"] == "Kustomization" and row["owner_object"]["name"] == app.ns
    assert row["sync"] == "Synced" and row["drifted"] == [], row  # what Flux applied is what Git says
    ks, source = row["flux"]
    assert ks["ready"] == "True" and ks["last_applied_revision"] == app.applied()
    assert ks["inventory"] == 2 and ks["suspended"] is False
    assert source["kind"] == "GitRepository" and source["last_applied_revision"] == app.applied()


def test_sync_requests_a_reconcile_source_first_faster_than_the_interval(app: FluxApp) -> None:
    """A pushed commit is in the cluster after ``fleetdeck sync`` (the interval is 10 minutes); the writes are
    exactly the plan's patches (journal and audit log agree); the journal has started and succeeded."""
    head = app.commit("green", "second")
    since = dt.datetime.now(dt.UTC)
    began = time.monotonic()
    synced = app.cli("sync", app.ns, "--yes")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    wait_for("the second commit applied", lambda: app.colour() == "green", timeout=90)
    took = time.monotonic() - began
    assert app.applied() == f"main@sha1:{head}"
    print(f"fleetdeck sync -> Flux applied the pushed commit in {took:.1f}s (interval {INTERVAL})")
    entries = [e for e in app.journal() if e["app"] == app.ns and e["action"] == "sync"]
    assert [e["result"] for e in entries] == ["started", "succeeded"]
    written = entries[-1]["details"]["patches"]
    cluster = app.flux.cluster.name
    assert [w.split(": ")[1] for w in written] == [f"GitRepository {app.ns}/{app.ns}", f"Kustomization {app.ns}/{app.ns}"]
    assert all("reconcile.fluxcd.io/requestedAt" in w and w.startswith(f"{cluster}: ") for w in written)
    # preview = effect: the patch bodies the plan printed are the ones the journal says were written
    printed = synced.stdout.splitlines()
    bodies = [printed[i + 1].strip() for i, line in enumerate(printed) if line.strip().startswith("write ")]
    assert bodies == [w.split(": ", 2)[2] for w in written]
    writes = wait_for("the audit log", lambda: flux_writes(app.flux, since) or None, timeout=10)
    assert writes == [("patch", "gitrepositories", app.ns), ("patch", "kustomizations", app.ns)]


def test_pause_stops_flux_and_resume_applies_what_came_meanwhile(app: FluxApp) -> None:
    """A suspended Kustomization does not apply a new commit even when asked to; after resume it does."""
    paused = app.cli("pause", app.ns, "--reason", "incident 17")
    assert paused.returncode == 0, paused.stdout + paused.stderr
    ks = app.ks()
    assert ks["spec"]["suspend"] is True
    assert ks["metadata"]["annotations"]["fleetdeck.io/pause-reason"] == "incident 17"
    head = app.commit("purple", "while paused")
    # ask Flux directly (as `flux reconcile source git` would): the source fetches, the Kustomization must not apply
    now = dt.datetime.now(dt.UTC).isoformat()
    app.rest.request("PATCH", SOURCE_PLURAL.format(ns=app.ns, name=app.ns),
                     body={"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": now}}},
                     content_type="application/merge-patch+json")
    wait_for("the source fetched the new commit",
             lambda: (app.source().get("status") or {}).get("artifact", {}).get("revision") == f"main@sha1:{head}")
    time.sleep(5)
    assert app.colour() == "blue"
    row = app.row()
    assert row["flux"][0]["suspended"] is True and row["flux"][0]["paused_by_fleetdeck"] is True
    refused = app.cli("sync", app.ns, "--yes")
    assert refused.returncode != 0 and "suspended" in refused.stdout + refused.stderr
    resumed = app.cli("resume", app.ns)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    wait_for("the commit made while paused applied", lambda: app.colour() == "purple", timeout=90)
    ks = app.ks()
    assert ks["spec"]["suspend"] is False
    assert not any(k.startswith("fleetdeck.io/") for k in ks["metadata"].get("annotations") or {})
    actions = [(e["action"], e["result"]) for e in app.journal() if e["app"] == app.ns]
    assert ("pause", "succeeded") in actions and ("resume", "succeeded") in actions


def test_rollback_pins_the_source_and_resume_restores_the_branch(app: FluxApp) -> None:
    """rollback to commit 1 pins the GitRepository (spec.ref.commit) and the cluster goes back to commit 1's
    objects; resume restores ``ref: {branch: main}`` and the branch head is applied again."""
    first = app.applied().rpartition(":")[2]
    head = app.git.commit({"apps/web/settings.yaml": configmap("settings", colour="green"),
                           "apps/web/extra.yaml": configmap("extra", a="1")}, "second")
    assert app.cli("sync", app.ns, "--yes").returncode == 0
    wait_for("the second commit applied", lambda: app.colour() == "green", timeout=90)
    assert get_or_none(app.rest, f"/api/v1/namespaces/{app.ns}/configmaps/extra") is not None

    rolled = app.cli("rollback", app.ns, first, "--yes")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    wait_for("the first commit applied again", lambda: app.colour() == "blue", timeout=90)
    wait_for("extra pruned", lambda: get_or_none(app.rest, f"/api/v1/namespaces/{app.ns}/configmaps/extra") is None)
    source = app.source()
    assert source["spec"]["ref"] == {"branch": "main", "commit": first}
    assert json.loads(source["metadata"]["annotations"]["fleetdeck.io/pinned-from"]) == {"branch": "main"}
    assert app.applied() == f"main@sha1:{first}"
    assert app.row()["flux"][1]["pinned_commit"] == first

    resumed = app.cli("resume", app.ns)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    wait_for("the branch head applied again", lambda: app.colour() == "green", timeout=90)
    source = app.source()
    assert source["spec"]["ref"] == {"branch": "main"}
    assert "fleetdeck.io/pinned-from" not in (source["metadata"].get("annotations") or {})
    assert app.applied() == f"main@sha1:{head}"
    actions = [(e["action"], e["result"]) for e in app.journal() if e["app"] == app.ns]
    assert ("rollback", "succeeded") in actions and ("resume", "succeeded") in actions


def test_an_edited_object_is_drift_with_owner_flux(app: FluxApp) -> None:
    """A live edit of a Flux-applied ConfigMap shows as drift on the flux-owned row (status and diff)."""
    app.rest.request("PATCH", f"/api/v1/namespaces/{app.ns}/configmaps/settings",
                     body={"data": {"colour": "red"}}, content_type="application/merge-patch+json")
    row = wait_for("drift", lambda: (r := app.row())["drifted"] and r)
    assert row["owner"] == "flux"
    assert any("ConfigMap" in d and "settings" in d for d in row["drifted"])
    diff = app.cli("diff", app.ns)
    assert diff.returncode == 1, diff.stdout + diff.stderr
    assert "red" in diff.stdout and "blue" in diff.stdout
    assert f"# owner flux (Kustomization {app.ns}/{app.ns} on {app.flux.cluster.name})" in diff.stdout
    as_json = app.cli("diff", app.ns, "-o", "json")
    target = json.loads(as_json.stdout)["targets"][0]
    assert target["owner"] == "flux"
    [resource] = target["resources"]
    assert resource["key"] == f"ConfigMap/{app.ns}/settings" and resource["strategy"] == "ssa-dry-run"
    # only the edit: fleetdeck's own tracking label/annotation, which Flux never writes, is not drift
    assert [c["path"] for c in resource["changes"]] == ["/data/colour"]


def test_read_only_mode_writes_nothing_to_flux(app: FluxApp) -> None:
    """--read-only refuses sync, pause, resume and rollback; the audit log has no write by fleetdeck."""
    first = app.applied().rpartition(":")[2]
    since = dt.datetime.now(dt.UTC)
    for args in (("sync", app.ns, "--yes"), ("pause", app.ns), ("resume", app.ns),
                 ("rollback", app.ns, first, "--yes")):
        result = app.cli("--read-only", *args)
        assert result.returncode != 0, (args, result.stdout + result.stderr)
    time.sleep(1)
    writes = mutating_events(audit_events(app.flux.cluster, since=since), user="fleetdeck-admin")
    assert writes == []
    ks = app.ks()
    assert ks["spec"].get("suspend") in (None, False)
    assert not any(k.startswith("fleetdeck.io/") for k in ks["metadata"].get("annotations") or {})


GREETER = {"cm.yaml": """\
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: "{{ .Release.Name }}-greeting"}
    data:
      greeting: {{ .Values.greeting | quote }}
      chart: {{ .Chart.Version | quote }}
    """}


class GreeterApp(NamedTuple):
    """A fleetdeck app `greeter` (one ConfigMap in Git) whose objects a HelmRelease of the same name installs
    from a chart served over HTTP (0.1.0 published), in a fresh namespace; helm-controller must be running."""

    ns: str
    fleet: Path
    serving: HelmRepoServer
    home: Path
    release_path: str


def greeter_app(flux_plane: FluxInfo, tmp_path: Path, helm_binary: Path, *, prefix: str, chart: str) -> GreeterApp:
    """Set up :class:`GreeterApp` (skips when helm-controller was not built); ``chart`` goes into the Git
    ConfigMap's ``chart`` key."""
    if not any(r.role == "helm-controller" for r in flux_plane.records):
        pytest.skip("helm-controller is not built (scripts/build-flux: optional)")
    from tests.engine.conftest import git

    ns = f"{prefix}-{secrets.token_hex(3)}"
    flux_plane.cluster.rest().request("POST", "/api/v1/namespaces", body=namespace_object(ns))
    repo = tmp_path / "config"
    (repo / "apps" / "greeter").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "apps" / "greeter" / "cm.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{ns}-greeting"},
         "data": {"greeting": "hi", "chart": chart}}))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "greeter")
    fleet = tmp_path / "fleetdeck.yaml"
    fleet.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main", "interval": 3600},
        "clusters": [{"name": flux_plane.cluster.name, "kubeconfig": str(flux_plane.cluster.kubeconfig),
                      "context": flux_plane.cluster.admin_context}],
        "apps": [{"name": ns, "path": "apps/greeter", "namespace": ns}],
    }))
    serving = HelmRepoServer(tmp_path / "charts-served")
    home = tmp_path / "helm-home"
    serving.publish(helm_binary, home, [write_chart(tmp_path / "c1", "greeter", "0.1.0", GREETER, "greeting: x\n")])
    return GreeterApp(ns, fleet, serving, home, f"/apis/helm.toolkit.fluxcd.io/v2/namespaces/{ns}/helmreleases/{ns}")


def install_greeter(rest: RestClient, ns: str, url: str) -> None:
    """A HelmRepository ``charts`` at ``url`` and a HelmRelease ``ns`` of its chart ``greeter`` (>=0.1.0)."""
    rest.request("POST", f"/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/helmrepositories", body={
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
        "metadata": {"name": "charts", "namespace": ns}, "spec": {"url": url, "interval": INTERVAL}})
    rest.request("POST", f"/apis/helm.toolkit.fluxcd.io/v2/namespaces/{ns}/helmreleases", body={
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": ns, "namespace": ns},
        "spec": {"interval": INTERVAL, "timeout": "1m", "install": {"disableWait": True},
                 "upgrade": {"disableWait": True}, "values": {"greeting": "hi"},
                 "chart": {"spec": {"chart": "greeter", "version": ">=0.1.0", "interval": INTERVAL,
                                    "sourceRef": {"kind": "HelmRepository", "name": "charts"}}}}})


def test_a_helm_release_owned_app_syncs_pauses_and_resumes_through_flux(
    flux_plane: FluxInfo, tmp_path: Path, helm_binary: Path
) -> None:
    """An app whose objects a HelmRelease (same name) installs is owned by flux: ``fleetdeck sync`` asks the
    HelmRepository first and then the HelmRelease to reconcile, so a chart version published meanwhile is
    installed well before the 10-minute intervals; pause suspends the HelmRelease and resume restores it."""
    ns, fleet, serving, home, release_path = greeter_app(flux_plane, tmp_path, helm_binary, prefix="hr",
                                                          chart="0.1.0")
    rest = flux_plane.cluster.rest()

    def greeting() -> dict[str, str] | None:
        cm = get_or_none(rest, f"/api/v1/namespaces/{ns}/configmaps/{ns}-greeting")
        return None if cm is None else dict(cm["data"])

    with serving.running():
        install_greeter(rest, ns, serving.url)
        wait_for("0.1.0 installed", lambda: greeting() == {"greeting": "hi", "chart": "0.1.0"})

        status = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json")
        row = json.loads(status.stdout)["apps"][0]
        assert row["owner"] == "flux", status.stdout + status.stderr
        assert row["owner_object"]["kind"] == "HelmRelease"
        assert [f["kind"] for f in row["flux"]] == ["HelmRelease", "HelmRepository"]

        serving.publish(helm_binary, home, [write_chart(tmp_path / "c2", "greeter", "0.2.0", GREETER,
                                                        "greeting: x\n")])
        began = time.monotonic()
        synced = run(tmp_path, "sync", ns, "--fleet", str(fleet), "--yes")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert "HelmRepository" in synced.stdout and "HelmRelease" in synced.stdout
        wait_for("0.2.0 installed", lambda: greeting() == {"greeting": "hi", "chart": "0.2.0"}, timeout=90)
        print(f"fleetdeck sync -> helm-controller installed the new chart version in {time.monotonic() - began:.1f}s")

        paused = run(tmp_path, "pause", ns, "--fleet", str(fleet), "--reason", "freeze")
        assert paused.returncode == 0, paused.stdout + paused.stderr
        assert rest.get(release_path)["spec"]["suspend"] is True
        resumed = run(tmp_path, "resume", ns, "--fleet", str(fleet))
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        release = rest.get(release_path)
        assert release["spec"]["suspend"] is False
        assert not any(k.startswith("fleetdeck.io/") for k in release["metadata"].get("annotations") or {})


def test_sync_dry_run_sends_the_same_patches_and_stores_nothing(app: FluxApp) -> None:
    """``sync --dry-run`` sends exactly the plan's two patches with ``dryRun=All``; no annotation is stored."""
    before = (app.source()["metadata"].get("annotations") or {}, app.ks()["metadata"].get("annotations") or {})
    since = dt.datetime.now(dt.UTC)
    result = app.cli("sync", app.ns, "--dry-run", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    events = wait_for("the audit log", lambda: [
        e for e in mutating_events(audit_events(app.flux.cluster, since=since), user="fleetdeck-admin")
        if e["objectRef"].get("apiGroup", "").endswith("toolkit.fluxcd.io")] or None, timeout=10)
    assert [(e["objectRef"]["resource"], "dryRun=All" in e["requestURI"]) for e in events] == [
        ("gitrepositories", True), ("kustomizations", True)]
    assert (app.source()["metadata"].get("annotations") or {}, app.ks()["metadata"].get("annotations") or {}) \
        == before


def test_a_second_operator_holding_the_apps_lease_blocks_flux_actions(app: FluxApp) -> None:
    """The app's operation Lease (``fleetdeck-system/fleetdeck-op-<app>``, the one a fleetdeck sync takes) held
    by another operator refuses a pause of the flux-owned app, naming the holder; the Kustomization is untouched."""
    app.rest.request("POST", "/api/v1/namespaces", body=namespace_object("fleetdeck-system"), ok=(201, 409))
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    app.rest.request("POST", "/apis/coordination.k8s.io/v1/namespaces/fleetdeck-system/leases", body={
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": f"fleetdeck-op-{app.ns}", "namespace": "fleetdeck-system"},
        "spec": {"holderIdentity": "bob@elsewhere", "leaseDurationSeconds": 300, "acquireTime": now,
                 "renewTime": now}})
    try:
        refused = app.cli("pause", app.ns, "--reason", "mine")
        assert refused.returncode != 0, refused.stdout + refused.stderr
        assert "bob@elsewhere" in refused.stdout + refused.stderr
        ks = app.ks()
        assert ks["spec"].get("suspend") in (None, False)
        assert not any(k.startswith("fleetdeck.io/") for k in ks["metadata"].get("annotations") or {})
        assert ("pause", "refused") in [(e["action"], e["result"]) for e in app.journal() if e["app"] == app.ns]
    finally:
        app.rest.delete(f"/apis/coordination.k8s.io/v1/namespaces/fleetdeck-system/leases/fleetdeck-op-{app.ns}")
