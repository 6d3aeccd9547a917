"""Owners: detection from controller objects, the fleet file's override, and the Argo CD driver's patches.

The Argo CD objects here are written as Argo CD's API documents them (``status.resources``,
``status.history``, ``spec.syncPolicy.automated``); no controller runs in these unit tests.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from core.controller_options import check_sync_option, check_sync_options
from core.desired.fleet_file import load_fleet
from core.errors import ConfigError
from core.model import ClusterName, ControllerRef, Owner, ResourceKey
from core.reconcile.owners import (
    CONTROL_ANNOTATIONS,
    Candidate,
    application_set_of,
    application_set_reverts,
    detect,
    resolve,
    tracked_keys,
)
from core.sync.owners import DRIVERS, PauseRequest, Refused, SyncRequest
from core.sync.owners.base import PAUSED, PAUSED_POLICY, PINNED

DEPLOY = ResourceKey("apps", "Deployment", "web", "web")
SERVICE = ResourceKey("", "Service", "web", "web")


def application(name: str = "web", *, automated: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"project": "default", "destination": {"server": "https://kubernetes.default.svc",
                                                                   "namespace": "web"},
                            "source": {"repoURL": "https://git.example/config", "path": "apps/web",
                                       "targetRevision": "main"}}
    if automated is not None:
        spec["syncPolicy"] = {"automated": automated}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd"}, "spec": spec, "status": status}


def kustomization(name: str, entries: list[str]) -> dict[str, Any]:
    return {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "namespace": "flux-system"},
            "status": {"inventory": {"entries": [{"id": e, "v": "v1"} for e in entries]},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def test_an_application_tracking_the_apps_objects_owns_it() -> None:
    app = application("frontend", resources=[{"group": "apps", "kind": "Deployment", "namespace": "web",
                                              "name": "web", "version": "v1"}])
    found = detect("web", {DEPLOY, SERVICE}, [Candidate("c1", app)])
    assert found.owner is Owner.ARGOCD
    assert found.ref == ControllerRef(Owner.ARGOCD, ClusterName("c1"),
                                      ResourceKey("argoproj.io", "Application", "argocd", "frontend"))
    assert "tracks 1 of the app's objects" in found.reason


def test_a_kustomization_inventory_is_read_as_flux_writes_it() -> None:
    ks = kustomization("apps", ["web_web_apps_Deployment", "web_web__Service"])
    assert tracked_keys(ks) == {DEPLOY, SERVICE}
    found = detect("web", {DEPLOY}, [Candidate("c1", ks)])
    assert found.owner is Owner.FLUX and found.ref is not None and found.ref.key.name == "apps"


def test_most_shared_objects_win_then_the_name() -> None:
    one = application("web", resources=[], sync={"status": "Synced"})
    two = kustomization("apps", ["web_web_apps_Deployment", "web_web__Service"])
    assert detect("web", {DEPLOY, SERVICE}, [Candidate("c1", one), Candidate("c1", two)]).owner is Owner.FLUX
    assert detect("web", set(), [Candidate("c1", one)]).owner is Owner.ARGOCD  # by name


def test_flux_labels_on_applied_objects_say_flux() -> None:
    live = {DEPLOY: {"metadata": {"labels": {"kustomize.toolkit.fluxcd.io/name": "apps",
                                             "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}}}
    apps = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system"}, "status": {"conditions": []}}
    found = detect("web", {DEPLOY}, [Candidate("c1", apps)], live=live.get)
    assert found.owner is Owner.FLUX and "flux-system/apps" in found.reason


def test_flux_labels_without_a_reporting_controller_object_say_nothing() -> None:
    """fleetdeck's own build of a Flux Kustomization labels what it applies as kustomize-controller does: the
    labels alone (no such Kustomization, or one no controller reported on) leave fleetdeck the owner."""
    live = {DEPLOY: {"metadata": {"labels": {"kustomize.toolkit.fluxcd.io/name": "apps",
                                             "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}}}
    assert detect("web", {DEPLOY}, [], live=live.get).owner is Owner.FLEETDECK
    bare = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system"}}
    assert detect("web", {DEPLOY}, [Candidate("c1", bare)], live=live.get).owner is Owner.FLEETDECK


def test_nothing_found_is_fleetdeck() -> None:
    assert detect("web", {DEPLOY}, [Candidate("c1", application("other", sync={}))]).owner is Owner.FLEETDECK


def test_an_object_no_controller_ever_reported_on_claims_nothing() -> None:
    """A Kustomization fleetdeck applied where Flux does not run has no status: fleetdeck stays the owner."""
    bare = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "web", "namespace": "flux-system"}}
    assert detect("web", {DEPLOY}, [Candidate("c1", bare)]).owner is Owner.FLEETDECK
    assert detect("web", {DEPLOY}, [Candidate("c1", application("web"))]).owner is Owner.FLEETDECK
    defaulted = {**bare, "status": {"observedGeneration": -1}}  # what Flux's CRDs default; no controller ran
    assert detect("web", {DEPLOY}, [Candidate("c1", defaulted)]).owner is Owner.FLEETDECK


def test_an_override_that_contradicts_the_cluster_is_a_warning() -> None:
    found = detect("web", set(), [Candidate("c1", application("web", sync={"status": "Synced"}))])
    owner, ref, warning = resolve(found, Owner.FLEETDECK, "cluster c1 owner")
    assert owner is Owner.FLEETDECK and ref is None
    assert warning.startswith("cluster c1 owner says fleetdeck, but Application argocd/web has the app's name")
    assert "both apply" in warning
    owner, ref, warning = resolve(detect("web", set(), []), Owner.ARGOCD, "app web owner")
    assert owner is Owner.ARGOCD and ref is None and "nothing in the cluster manages it" in warning
    assert resolve(found, Owner.ARGOCD, "app web owner") == (Owner.ARGOCD, found.ref, "")


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "config").mkdir(exist_ok=True)
    path = tmp_path / "fleetdeck.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_fleet_file_owner_overrides(tmp_path: Path) -> None:
    fleet = load_fleet(write(tmp_path, """\
        repo: {url: ./config}
        clusters:
          - {name: a, owner: argocd}
          - {name: b}
          - {name: c}
        apps:
          - {name: web, path: web, namespace: web, owners: {b: flux}}
          - {name: api, path: api, namespace: api, owner: fleetdeck}
          - {name: db, path: db, namespace: db}
        """))
    web, api, db = fleet.apps
    a, b, c = fleet.clusters
    assert web.owner_override(a) == (Owner.ARGOCD, "cluster a owner")
    assert web.owner_override(b) == (Owner.FLUX, "app web owners.b")
    assert web.owner_override(c) == (None, "")
    assert api.owner_override(a) == (Owner.FLEETDECK, "app api owner")
    assert db.owner_override(c) == (None, "")


def test_fleet_file_rejects_an_unknown_owner_and_cluster(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_fleet(write(tmp_path, """\
            repo: {url: ./config}
            clusters: [{name: a, owner: jenkins}]
            """))
    assert "clusters[0].owner" in str(info.value) and "'argocd'" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_fleet(write(tmp_path, """\
            repo: {url: ./config}
            clusters: [{name: a}]
            apps: [{name: web, path: web, namespace: web, owners: {z: flux}}]
            """))
    assert "unknown cluster 'z'" in str(info.value)


REF = ControllerRef(Owner.ARGOCD, ClusterName("c1"), ResourceKey("argoproj.io", "Application", "argocd", "web"))
ARGO = DRIVERS[Owner.ARGOCD]
SHA = "a" * 40


def test_argocd_sync_sets_the_operation_as_argocd_app_sync_does() -> None:
    request = SyncRequest(revision=SHA, prune=True, resources=(DEPLOY,), sync_options=("ServerSideApply=true",),
                          by="alice")
    (patch,) = ARGO.sync(REF, application(), request, lambda c, k: None)
    assert patch.patch == {"operation": {"initiatedBy": {"username": "alice"}, "sync": {
        "revision": SHA, "prune": True, "syncOptions": ["ServerSideApply=true"],
        "resources": [{"group": "apps", "kind": "Deployment", "namespace": "web", "name": "web"}]}}}
    assert str(patch) == ("Application argocd/web: set operation.sync{revision: aaaaaaaaaaaa, prune: true, "
                          "resources: [Deployment/web/web], syncOptions: [ServerSideApply=true]}")
    busy = application(operationState={"phase": "Running"})
    with pytest.raises(Refused, match="another operation is already in progress"):
        ARGO.sync(REF, busy, request, lambda c, k: None)


def test_sync_options_are_argocds_documented_set_spelt_exactly() -> None:
    assert check_sync_options(["CreateNamespace=true", "PrunePropagationPolicy=orphan", "CreateNamespace=true"]) \
        == ("CreateNamespace=true", "PrunePropagationPolicy=orphan")
    for bad, why in (("createnamespace=true", "did you mean CreateNamespace"), ("Replace=false", "Replace=true"),
                     ("Force=true", "per resource|resource's"), ("Nope=true", "documented"), ("Prune", "KEY=VALUE")):
        with pytest.raises(ValueError, match=why):
            check_sync_option(bad)
    with pytest.raises(ValueError, match="one value per option"):
        check_sync_options(["ServerSideApply=true", "ServerSideApply=false"])
    with pytest.raises(Refused, match="did you mean"):  # the driver checks again (the API may be called directly)
        ARGO.sync(REF, application(), SyncRequest(revision=SHA, sync_options=("serverSideApply=true",)),
                  lambda c, k: None)


def test_argocd_controller_dry_run_is_operation_sync_dry_run() -> None:
    (patch,) = ARGO.sync(REF, application(), SyncRequest(revision=SHA, dry_run=True, by="alice"), lambda c, k: None)
    assert patch.patch["operation"]["sync"] == {"revision": SHA, "dryRun": True}
    assert str(patch).endswith("dryRun: true}")


def test_flux_refuses_argocds_sync_options_and_dry_run() -> None:
    ks = kustomization("web", [])
    flux_ref = ControllerRef(owner=Owner.FLUX, cluster=ClusterName("dev"),
                             key=ResourceKey("kustomize.toolkit.fluxcd.io", "Kustomization", "flux-system", "web"))
    with pytest.raises(Refused, match="are Argo CD's"):
        DRIVERS[Owner.FLUX].sync(flux_ref, ks, SyncRequest(revision="", sync_options=("CreateNamespace=true",)),
                                 lambda c, k: None)
    with pytest.raises(Refused, match="--controller-dry-run"):
        DRIVERS[Owner.FLUX].sync(flux_ref, ks, SyncRequest(revision="", dry_run=True), lambda c, k: None)


def helm_release(chart: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "web", "namespace": "flux-system"}, "spec": {**chart, **spec},
            "status": {"history": [{"version": 2, "chartName": "web", "chartVersion": "0.2.0"},
                                   {"version": 1, "chartName": "web", "chartVersion": "0.1.0"}]}}


HR_REF = ControllerRef(owner=Owner.FLUX, cluster=ClusterName("dev"),
                       key=ResourceKey("helm.toolkit.fluxcd.io", "HelmRelease", "flux-system", "web"))


def test_helm_release_rollback_pins_what_its_chart_source_allows() -> None:
    flux = DRIVERS[Owner.FLUX]
    # OCI chartRef: nothing fleetdeck can pin, refused with the reason
    oci = helm_release({"chartRef": {"kind": "OCIRepository", "name": "web"}})
    with pytest.raises(Refused, match=re.escape("spec.chartRef (OCIRepository web)")):
        flux.rollback(HR_REF, oci, "0.1.0", "alice", lambda c, k: {"kind": "OCIRepository"})
    # a chart from a GitRepository: the source pinned to the commit, as for a Kustomization
    sha = "c" * 40
    from_git = helm_release({"chart": {"spec": {"chart": "./charts/web", "sourceRef": {
        "kind": "GitRepository", "name": "config"}}}})
    source = {"kind": "GitRepository", "metadata": {"name": "config", "namespace": "flux-system"},
              "spec": {"ref": {"branch": "main"}}}
    pin, applier = flux.rollback(HR_REF, from_git, sha, "alice", lambda c, k: source)
    assert pin.key.kind == "GitRepository" and pin.patch["spec"] == {"ref": {"commit": sha}}
    assert json.loads(pin.patch["metadata"]["annotations"]["fleetdeck.io/pinned-from"]) == {"branch": "main"}
    assert applier.key == HR_REF.key and applier.patch["metadata"]["annotations"][PINNED] == sha
    # a chart from a HelmRepository: spec.chart.spec.version pinned to a status.history chart version
    chart_spec = {"chart": "web", "version": ">=0.1.0", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}
    from_repo = helm_release({"chart": {"spec": chart_spec}})
    assert flux.rollback_revisions(from_repo) == ("0.2.0", "0.1.0")
    (patch,) = flux.rollback(HR_REF, from_repo, "0.1.0", "alice", lambda c, k: {"kind": "HelmRepository"})
    assert patch.patch["spec"] == {"suspend": False, "chart": {"spec": {"version": "0.1.0"}}}
    notes = patch.patch["metadata"]["annotations"]
    assert json.loads(notes["fleetdeck.io/pinned-from"]) == {"version": ">=0.1.0"} and notes[PINNED] == "0.1.0"
    with pytest.raises(Refused, match=re.escape("known: 0.2.0, 0.1.0")):
        flux.rollback(HR_REF, from_repo, "0.3.0", "alice", lambda c, k: {"kind": "HelmRepository"})
    # resume puts the constraint back (null: the field was absent) and removes fleetdeck's annotations
    pinned = helm_release({"chart": {"spec": {**chart_spec, "version": "0.1.0"}}})
    pinned["metadata"]["annotations"] = {k: v for k, v in notes.items() if v is not None}
    source_first, restore = flux.resume(HR_REF, pinned, lambda c, k: {"kind": "HelmRepository"})
    assert source_first.key.kind == "HelmRepository"  # a reconcile asked of the source first, as for sync
    assert restore.patch["spec"] == {"suspend": False, "chart": {"spec": {"version": ">=0.1.0"}}}
    assert restore.patch["metadata"]["annotations"]["fleetdeck.io/pinned-from"] is None
    assert restore.patch["metadata"]["annotations"][PAUSED] is None


def application_set(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
            "metadata": {"name": "envs", "namespace": "argocd"}, "spec": spec}


def test_a_pause_or_rollback_its_application_set_would_undo_is_refused() -> None:
    generated = application(automated={"prune": True}, history=[{"id": 1, "revision": SHA}])
    generated["metadata"]["ownerReferences"] = [{"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
                                                 "name": "envs", "uid": "u1"}]
    assert application_set_of(generated) == ResourceKey("argoproj.io", "ApplicationSet", "argocd", "envs")
    plain = application_set()  # applicationsSync defaults to sync: the template wins, annotations dropped
    why = application_set_reverts(generated, plain)
    assert "put spec.syncPolicy.automated back" in why and "fleetdeck.io/* annotations" in why
    letting = application_set(ignoreApplicationDifferences=[{"jqPathExpressions": [".spec.syncPolicy"]}],
                              preservedFields={"annotations": list(CONTROL_ANNOTATIONS)})
    assert application_set_reverts(generated, letting) == ""
    other_app = application_set(ignoreApplicationDifferences=[{"name": "other", "jsonPointers": ["/spec/syncPolicy"]},
                                                              {"jsonPointers": ["/metadata/annotations"]}])
    assert application_set_reverts(generated, other_app).endswith("(or applicationsSync: create-only)")
    assert application_set_reverts(generated, application_set(syncPolicy={"applicationsSync": "create-only"})) == ""
    seen = {application_set_of(generated): plain}
    with pytest.raises(Refused, match="pause would not hold: the Application is generated by ApplicationSet "
                                      "argocd/envs"):
        ARGO.pause(REF, generated, PauseRequest(reason="", by="alice"), lambda c, k: seen.get(k))
    with pytest.raises(Refused, match="rollback would not hold"):
        ARGO.rollback(REF, generated, SHA, "alice", lambda c, k: seen.get(k))
    # not visible to fleetdeck (no ApplicationSet CRD served there): the pause goes through
    assert ARGO.pause(REF, generated, PauseRequest(reason="", by="alice"), lambda c, k: None)
    assert ARGO.pause(REF, generated, PauseRequest(reason="", by="alice"),
                      lambda c, k: letting if k.kind == "ApplicationSet" else None)


def test_argocd_pause_keeps_the_automated_block_and_resume_restores_it_exactly() -> None:
    automated = {"prune": True, "selfHeal": True}
    app = application(automated=automated)
    (pause,) = ARGO.pause(REF, app, PauseRequest(reason="incident 42", by="alice"), lambda c, k: None)
    assert pause.patch["spec"] == {"syncPolicy": {"automated": None}}
    notes = pause.patch["metadata"]["annotations"]
    assert notes[PAUSED] == "true" and json.loads(notes[PAUSED_POLICY]) == automated
    paused = {**app, "metadata": {**app["metadata"], "annotations": {k: v for k, v in notes.items() if v}},
              "spec": {**app["spec"], "syncPolicy": {}}}
    (resume,) = ARGO.resume(REF, paused, lambda c, k: None)
    assert resume.patch["spec"] == {"syncPolicy": {"automated": automated}}
    assert set(resume.patch["metadata"]["annotations"]) == {k for k, v in notes.items() if v}
    assert all(v is None for v in resume.patch["metadata"]["annotations"].values())
    with pytest.raises(Refused, match="not paused by fleetdeck"):
        ARGO.resume(REF, app, lambda c, k: None)


def test_argocd_rollback_turns_auto_sync_off_first_then_syncs_a_history_revision() -> None:
    source = {"repoURL": "https://git.example/config", "path": "apps/web", "targetRevision": "main"}
    app = application(automated={"prune": True}, history=[
        {"id": 1, "revision": "b" * 40, "source": source, "initiatedBy": {"username": "bob"}},
        {"id": 2, "revision": SHA, "source": source, "initiatedBy": {"automated": True}}])
    off, sync = ARGO.rollback(REF, app, "bbbbbbbb", "alice", lambda c, k: None)
    assert off.patch["spec"] == {"syncPolicy": {"automated": None}}
    assert off.patch["metadata"]["annotations"][PINNED] == "b" * 40
    assert sync.patch == {"operation": {"initiatedBy": {"username": "alice"},
                                        "sync": {"revision": "b" * 40, "source": source}}}
    assert ARGO.rollback_revisions(app) == (SHA, "b" * 40)
    with pytest.raises(Refused, match=r"not in the Application's status\.history"):
        ARGO.rollback(REF, app, "cccc", "alice", lambda c, k: None)


def test_argocd_refresh_is_the_refresh_annotation() -> None:
    (patch,) = ARGO.refresh(REF, application(), lambda c, k: None)
    assert patch.patch == {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}}


def test_argocd_status_reads_what_the_controller_reports() -> None:
    from core.reconcile.owners import argocd_history, argocd_status, control_of

    app = application(automated={"prune": True}, sync={"status": "OutOfSync", "revision": SHA},
                      health={"status": "Degraded", "message": "1 of 2 pods"},
                      operationState={"phase": "Failed", "message": "hook failed",
                                      "operation": {"sync": {"revision": SHA}}},
                      conditions=[{"type": "ComparisonError", "message": "repo unreachable"}],
                      resources=[{"group": "apps", "kind": "Deployment", "namespace": "web", "name": "web",
                                  "status": "OutOfSync", "health": {"status": "Degraded"}}],
                      history=[{"id": 3, "revision": SHA, "deployedAt": "2026-12-07T10:00:00Z",
                                "initiatedBy": {"username": "alice"}}])
    app["metadata"]["ownerReferences"] = [{"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
                                           "name": "envs", "uid": "u"}]
    status = argocd_status(app)
    assert (status.sync, status.revision, status.health, status.automated) == ("OutOfSync", SHA, "Degraded", True)
    assert (status.operation_phase, status.operation_message, status.operation_revision) == \
        ("Failed", "hook failed", SHA)
    assert status.conditions[0].type == "ArgoCDComparisonError" and status.conditions[0].severity.value == "error"
    assert status.resources[0].key == DEPLOY and status.resources[0].health == "Degraded"
    assert status.generated_by == "ApplicationSet argocd/envs"
    (entry,) = argocd_history(app)
    assert (entry.id, entry.by, entry.trigger.value, entry.at) == (3, "alice", "manual", 1796637600.0)
    paused = {"metadata": {"annotations": {PAUSED: "true", "fleetdeck.io/pause-reason": "freeze",
                                           "fleetdeck.io/pause-expires-at": "2026-12-07T10:00:00Z"}}}
    assert control_of(paused, now=1796637600.0 - 1).paused is True
    assert control_of(paused, now=1796637600.0 + 1).paused is False  # expired
    from core.reconcile.owners import pause_expired

    assert not pause_expired(paused, now=1796637600.0 - 1) and pause_expired(paused, now=1796637600.0 + 1)


def test_controller_events_mark_only_the_targets_they_may_own() -> None:
    from dataclasses import replace as with_

    from core.engine.owners import touched_by_controllers
    from tests.fixtures.snapshots import fleet_snapshot

    key = ResourceKey("argoproj.io", "Application", "argocd", "frontend")
    obj = application("frontend", resources=[{"group": "apps", "kind": "Deployment", "namespace": "web",
                                              "name": "web"}])
    base = fleet_snapshot().apps[0]
    rows = {("old", "c1"): with_(base, controller=ControllerRef(Owner.ARGOCD, ClusterName("hub"), key))}
    targets = [("frontend", "c2"), ("web", "c1"), ("old", "c1"), ("other", "c1")]
    desired = {("web", "c1"): [DEPLOY]}
    touched = touched_by_controllers([key, ResourceKey("", "ConfigMap", "x", "y")], "hub", targets=targets,
                                     rows=rows, desired_keys=lambda tid: desired.get(tid, []),
                                     lookup={key: obj}.get)
    assert touched == {("frontend", "c2"), ("web", "c1"), ("old", "c1")}
    assert touched_by_controllers([ResourceKey("", "ConfigMap", "x", "y")], "hub", targets=targets, rows=rows,
                                  desired_keys=lambda tid: [], lookup=lambda k: None) == set()
